/* ---
name: cumulative_surprisal
title: Cumulative-surprisal hazard with agent, task and observation effects
hypothesis: >-
  A task accumulates "surprisal" (difficulty the agent has to absorb) as it gets longer; the
  agent fails once the cumulative hazard H is exhausted, p = exp(-H), with
  log H = agent effect + alpha * log(minutes) + task effect + observation noise. alpha = 1 is
  the constant hazard; alpha < 1 means surprisal grows more slowly than length. Agent and task
  effects are hierarchical; the observation noise is per run, normal(0, sigma_obs) on log H, and
  is integrated out of each run's success probability by quadrature (a per-cell latent would
  not be identified where cells have a single run).
source: >-
  The cumulative-surprisal hazard hypothesis as stated in horizon-zoo's zoo issue (issue 8),
  a proportional-hazards reading of METR's time horizons (arXiv:2503.14499); a primary
  reference for the name is still to be added.
keywords: [hazard, surprisal, survival, task-effects, hierarchical]
parameters:
  mu_agent: >-
    population mean of agent log cumulative hazard at the data's mean log task length, plus the
    mean effect of the suite's tasks
  tau_agent: "population sd of agent log cumulative hazard"
  agent_m[agent]: >-
    agent_c on the run-averaged scale: agent_c = noise_scale * (agent_m + gamma) - gamma, with
    noise_scale = sqrt(1 + 6 / pi^2 * sigma_obs^2) and gamma Euler's constant (see alpha_m)
  alpha_m: >-
    alpha on the run-averaged scale, alpha = noise_scale * alpha_m. Why: run noise on log H flattens every
    curve (a Gumbel threshold of variance pi^2 / 6 plus noise of variance sigma_obs^2), so the
    data fix roughly alpha / noise_scale, not alpha; sampled directly, alpha, tau_task, the spread of
    agent_c and sigma_obs rose and fell together (posterior correlations ~0.9 on cyber-horizons,
    R-hat 1.010 and divergences). Priors stay on alpha, tau_task and agent_c (with the Jacobian).
  tau_m: "tau_task on the run-averaged scale, tau_task = noise_scale * tau_m"
  z_task[task]: "standardised task effect minus the tasks' mean (non-centred, sums to zero)"
  z_task_mean: "mean of the standardised task effects"
  sigma_obs: "sd of per-run observation noise on log hazard"
generated:
  noise_scale: "sqrt(1 + 6 / pi^2 * sigma_obs^2), how much run noise flattens the curves"
  agent_c[agent]: >-
    agent log cumulative hazard at the data's mean log task length, on the suite's tasks
    (agent effect plus the mean task effect; centred)
  alpha: "elasticity of cumulative hazard with respect to task length"
  tau_task: "sd of task effects on log hazard"
  agent_effect[agent]: "agent log cumulative hazard of a typical (task effect 0) 1-minute task"
priors:
  mu_agent: >-
    through mu_agent - tau_task * z_task_mean ~ normal(0, 3): at the data's mean log task length an average agent has cumulative hazard 1
    (success 37%) at the centre. Wide on the success scale: the central 95% of log H (-5.9 to 5.9)
    runs from success 99.7% down to 1e-155, and 27% of the prior mass is on success below 0.2%.
    Kept wide because it is the mean of the agents' levels, which each agent's runs on many tasks
    pin down (the data, not this prior, place the agents)
  tau_agent: "half-normal(0, 3): agents can differ by orders of magnitude"
  agent_c: >-
    normal(mu_agent, tau_agent), centred: each agent is pinned by its runs on many tasks, and the
    non-centred form had mu_agent and the mean standardised effect correlated at -0.96
  alpha: "normal(1, 0.5): constant hazard at the centre; keeps 0 and 2 in the tails"
  tau_task: "half-normal(0, 1): task effects of a few units of log hazard at most"
  z_task: >-
    std_normal() on the zero-sum subspace: with z_task_mean ~ normal(0, 1 / sqrt(T)) this is
    exactly T independent std_normal() effects. Why split them: raising every agent and lowering
    every task by the same amount leaves the likelihood unchanged; sampled through the raw
    effects that direction gave R-hat 1.017 on metr-early, here the mean enters only priors
  z_task_mean: "normal(0, 1 / sqrt(T)): the mean of T independent std_normal() effects"
  sigma_obs: "half-normal(0, 0.5): modest run-to-run noise"
  agent_m: "none of its own: the prior is on agent_c"
  alpha_m: "none of its own: the prior is on alpha"
  tau_m: "none of its own: the prior is on tau_task"
--- */
functions {
  // log of E[exp(-exp(mu + sigma * Z))], Z ~ normal(0, 1), by Gauss-Hermite quadrature with
  // nodes x (increasing) and weights w. With h = exp(mu) and e = exp(sigma * x), node k gives
  // H = h * e[k]; factoring out the smallest, exp(-h e[1]), keeps the weighted sum above
  // w[1] (no underflow to log 0 for huge hazards) and lets the whole N x K node grid be one
  // matrix expression (a loop over cells made the model ~20x slower than its neighbours).
  // Subtracting 1e-15 keeps log p below 0 where p = 1 in floating point (logit inf); fmin would
  // do the same, but it stops stanc --O1 from storing the model block's copy as structs of arrays.
  // The model block repeats this expression (see there why); keep the two the same.
  vector noisy_hazard_log_p(vector mu, real sigma, vector x, vector w) {
    vector[rows(x)] e = exp(sigma * x);
    vector[rows(mu)] h = exp(mu);
    return log(exp(-h * (e - e[1])') * w) - h * e[1] - 1e-15;
  }
}
data {
#include data.stan
}
transformed data {
  // A weight multiplies its cell's log likelihood, so it folds into the cell's counts.
  vector[N] weighted_success = weight .* to_vector(n_success);
  vector[N] weighted_failure = weight .* to_vector(n_runs) - weighted_success;
  // Log length is centred on the tasks' mean so that the agent effects and alpha are nearly
  // uncorrelated; at 1 minute (far below most tasks) they were, and NUTS needed ~128 leapfrog
  // steps per draw (17 minutes on the default data).
  real log_minutes_centre = mean(log_minutes);
  vector[T] log_minutes_c = log_minutes - log_minutes_centre;
  // 15-point Gauss-Hermite rule for E[f(Z)], Z ~ normal(0, 1): integrates task-level effects
  // out of p_curve (error < 1e-3 for logit sd up to 3).
  real euler_gamma = 0.5772156649015329;  // minus the mean of the Gumbel-min threshold
#include gauss_hermite.stan
}
parameters {
  real mu_agent;
  real<lower=0> tau_agent;
  vector[A] agent_m;
  real alpha_m;
  real<lower=0> tau_m;
  sum_to_zero_vector[T] z_task;
  real z_task_mean;
  real<lower=0> sigma_obs;
}
transformed parameters {
  // Success iff eta + sigma_obs * Z < W, W a Gumbel-min threshold (mean -gamma, variance
  // pi^2 / 6); matching the mean and sd of W - sigma_obs * Z gives noise_scale. Only the
  // geometry depends on this approximation: the map is exact and its Jacobian is added below.
  real noise_scale = sqrt(1 + 6 / square(pi()) * square(sigma_obs));
  vector[A] agent_c = noise_scale * (agent_m + euler_gamma) - euler_gamma;
  real alpha = noise_scale * alpha_m;
  real<lower=0> tau_task = noise_scale * tau_m;
}
model {
  // (agent_m, alpha_m, tau_m) -> (agent_c, alpha, tau_task) scales A + 2 coordinates by noise_scale
  target += (A + 2) * log(noise_scale);
  // agent_c and mu_agent carry the tasks' mean effect, so the likelihood sees z_task only
  // through its zero-sum part; mu_agent - tau_task * z_task_mean is the original mu_agent
  // (a shift with unit Jacobian).
  mu_agent - tau_task * z_task_mean ~ normal(0, 3);
  z_task_mean ~ normal(0, inv_sqrt(T));
  tau_agent ~ normal(0, 3);
  agent_c ~ normal(mu_agent, tau_agent);
  alpha ~ normal(1, 0.5);
  tau_task ~ normal(0, 1);
  z_task ~ std_normal();
  sigma_obs ~ normal(0, 0.5);
  {
    // noisy_hazard_log_p written out. stanc --O1 stores a matrix as one struct of arrays (a value
    // array and an adjoint array, one reverse-pass step per operation) only when neither it nor
    // anything it is computed from reaches a user-defined function or fmin; so stored, the
    // N x 15 node grid makes a gradient 1.6x faster (6.8 against 10.9 ms on the 20,000-cell
    // scale-up). The same rule is why this model does not use reduce_sum: passing agent_c to the
    // partial-sum function would store all of this as arrays of structs again.
    vector[N] h = exp(agent_c[agent] + alpha * log_minutes_c[task] + tau_task * z_task[task]);
    row_vector[15] e = exp(sigma_obs * gh_x');
    vector[N] log_p = log(exp(-h * (e - e[1])) * gh_w) - h * e[1] - 1e-15;
    // the binomial log likelihood without its coefficients (constants)
    target += dot_product(weighted_success, log_p) + dot_product(weighted_failure, log1m_exp(log_p));
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  vector[A] agent_effect = agent_c - tau_task * z_task_mean - alpha * log_minutes_centre;
  {
    vector[N] log_p = noisy_hazard_log_p(agent_c[agent] + alpha * log_minutes_c[task] + tau_task * z_task[task],
                                         sigma_obs, gh_x, gh_w);
    vector[N] eta = log_p - log1m_exp(log_p);
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  {
    // a new task and a new run: task effect and run noise integrated out together
    real s = sqrt(square(tau_task) + square(sigma_obs));
    for (a in 1:A) {
      for (g in 1:G) {
        p_curve[a, g] = dot_product(gh_w, exp(-exp(agent_effect[a] + alpha * log_minutes_grid[g] + s * gh_x)));
      }
    }
  }
}
