/* ---
name: weibull
title: Per-agent Weibull survival in task length, hierarchical over agents
hypothesis: >-
  Success is survival to the end of the task with a hazard that changes with elapsed human
  time: p = exp(-(minutes / scale_a)^k_a). k = 1 is the constant hazard; k < 1 is a decreasing
  hazard (an agent that survives the start of a task is likely to finish it), which flattens
  the curve for long tasks. Agents' 50% horizons and shapes vary around population means.
source: >-
  Weibull survival extension of the constant-hazard ("half-life") model of METR's time
  horizons (Ord 2025, "Is there a Half-Life for the Success Rates of AI Agents?"), which
  discusses a decreasing hazard as the alternative.
keywords: [hazard, weibull, survival, hierarchical]
parameters:
  mu_h50: "population mean of the log 50% horizon (natural log minutes)"
  tau_h50: "population sd of the log 50% horizon"
  log_h50[agent]: "natural log of the agent's 50% horizon in minutes (centred)"
  mu_shape: "population mean of log shape"
  tau_shape: "population sd of log shape"
  z_shape[agent]: "standardised agent log shape (non-centred)"
generated:
  h50[agent]: "50% horizon in minutes, scale * ln(2)^(1/shape)"
  scale[agent]: "Weibull scale in minutes (success probability exp(-1) = 0.37 at this length)"
  shape[agent]: "Weibull shape k (1 = constant hazard, < 1 decreasing hazard)"
priors:
  mu_h50: "normal(2, 4): 7 minutes at the centre, 95% between 0.2 seconds and 13 days"
  tau_h50: "half-normal(0, 3): agents can differ by orders of magnitude"
  log_h50: >-
    normal(mu_h50, tau_h50), centred: every agent's curve is pinned by its own runs on many
    tasks, where the non-centred form puts a funnel-shaped posterior on the standardised effects
  mu_shape: "normal(0, 0.5): shape 1 (constant hazard) at the centre, 95% between 0.4 and 2.7"
  tau_shape: "half-normal(0, 0.5): shapes mostly within a factor 2 across agents"
  z_shape: >-
    std_normal(), non-centred: shapes differ little between agents (tau_shape near 0.1), and the
    centred form then diverges in the neck of the funnel
adapt_delta: 0.95
init_radius: 0.5
--- */
functions {
#include binomial_logit_weighted.stan
  vector cells_eta(int start, int end, array[] int agent, array[] int task, vector log_minutes,
                   vector shape, vector log_h50) {
    array[end - start + 1] int a = agent[start:end];
    array[end - start + 1] int t = task[start:end];
    // log p = -H with H = ln 2 * (minutes / h50)^k; logit(p) = -H - log(1 - exp(-H)).
    vector[end - start + 1] H = log2() * exp(shape[a] .* (log_minutes[t] - log_h50[a]));
    return -H - log1m_exp(-H);
  }
  // Log likelihood of cells start..end: reduce_sum's partial sum, and the whole sum in one call
  // when grainsize is 0 (both paths share one likelihood).
  real cells_log_lik(array[] int n_success, int start, int end, array[] int n_runs, vector weight,
                     int is_weighted, array[] int agent, array[] int task, vector log_minutes,
                     vector shape, vector log_h50) {
    return binomial_logit_weighted(n_success, n_runs[start:end], cells_eta(start, end, agent, task,
                                   log_minutes, shape, log_h50),
                                   weight[start:end], is_weighted);
  }
}
data {
#include data.stan
  int<lower=0> grainsize;                     // cells per reduce_sum slice; 0 = one thread
}
transformed data {
  int is_weighted = min(weight) != 1 || max(weight) != 1;
}
parameters {
  real mu_h50;
  real<lower=0> tau_h50;
  vector[A] log_h50;
  real mu_shape;
  real<lower=0> tau_shape;
  vector[A] z_shape;
}
transformed parameters {
  // The agent's 50% horizon, not its Weibull scale, is the location parameter: the data pin
  // down where the curve crosses one half almost independently of its steepness, whereas the
  // scale (the 37% point) moves with the shape and gives a banana-shaped posterior.
  vector[A] shape = exp(mu_shape + tau_shape * z_shape);
}
model {
  mu_h50 ~ normal(2, 4);
  tau_h50 ~ normal(0, 3);
  log_h50 ~ normal(mu_h50, tau_h50);
  mu_shape ~ normal(0, 0.5);
  tau_shape ~ normal(0, 0.5);
  z_shape ~ std_normal();
  if (grainsize > 0) {
    target += reduce_sum(cells_log_lik, n_success, grainsize, n_runs, weight, is_weighted, agent,
                         task, log_minutes, shape, log_h50);
  } else {
    target += cells_log_lik(n_success, 1, N, n_runs, weight, is_weighted, agent, task, log_minutes,
                            shape, log_h50);
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  vector[A] h50 = exp(log_h50);
  vector[A] scale = exp(log_h50 - log(log2()) ./ shape);
  {
    vector[N] eta = cells_eta(1, N, agent, task, log_minutes, shape, log_h50);
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) p_curve[a] = exp(-log2() * exp(shape[a] * (log_minutes_grid - log_h50[a])))';
}
