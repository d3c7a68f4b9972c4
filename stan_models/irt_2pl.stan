/* ---
name: irt_2pl
title: Two-parameter item response model with difficulty rising in log task length
hypothesis: >-
  Success is an item-response contest: agent ability against task difficulty, scaled by the
  task's discrimination, P = inv_logit(disc_t * (ability_a - difficulty_t)). Difficulty rises
  linearly in log2 length with task-level scatter; discrimination is log-normal across tasks
  with geometric mean 1 (which sets the logit scale of ability and difficulty).
  Length matters only through difficulty, so the slope of an agent's marginal curve comes from
  the tasks, not the agent.
source: >-
  Birnbaum (1968) two-parameter logistic model, in Lord & Novick, Statistical Theories of Mental
  Test Scores; applied to METR tasks as items (arXiv:2503.14499).
keywords: [irt, 2pl, item-response, discrimination, difficulty]
adapt_delta: 0.9
parameters:
  ability[agent]: "agent ability on the logit scale, relative to a task of mean log2 length"
  delta: "rise in difficulty per doubling of task length"
  sigma_diff: "sd of task difficulty around its length trend"
  sigma_disc: "sd of log discrimination across tasks"
  r_diff[task]: "task difficulty residual around the length trend (logit scale)"
  z_disc[task]: "standardised log discrimination (non-centred, sums to zero)"
generated:
  difficulty[task]: "task difficulty (logit scale)"
  discrimination[task]: "task discrimination"
priors:
  ability: "normal(0, 2.5): weakly informative on the logit scale"
  delta: "normal(0.7, 0.7): centred on the Bradley-Terry rate ln(2) per doubling"
  sigma_diff: "half-normal(0, 1): difficulty scatter of a few logits at most"
  sigma_disc: "half-normal(0, 0.5): discriminations mostly within a factor 3 of each other"
  r_diff: "normal(0, sigma_diff); non-centred for tasks with little data, centred for the rest"
  z_disc: >-
    std_normal() on the zero-sum subspace, so the discriminations' geometric mean is 1. Why:
    multiplying every discrimination by c and dividing ability, delta and the difficulties by c
    leaves every probability unchanged (the usual 2PL scale indeterminacy); with a free mean
    only the priors fixed that direction and sigma_disc mixed slowly along it (min bulk ESS 245
    of 1000 draws on the 160,000-run scale-up). Non-centred for every task: where tasks hardly
    differ in discrimination sigma_disc nears 0, a funnel the centred form cannot sample (R-hat
    1.5 on the scale-up)
--- */
functions {
#include binomial_logit_weighted.stan
  vector cells_eta(int start, int end, array[] int agent, array[] int task, vector x,
                   vector ability, real delta, vector r_diff, real sigma_disc, vector z_disc) {
    array[end - start + 1] int a = agent[start:end];
    array[end - start + 1] int t = task[start:end];
    return exp(sigma_disc * z_disc[t]) .* (ability[a] - delta * x[t] - r_diff[t]);
  }
  // Log likelihood of cells start..end: reduce_sum's partial sum, and the whole sum in one call
  // when grainsize is 0 (both paths share one likelihood).
  real cells_log_lik(array[] int n_success, int start, int end, array[] int n_runs, vector weight,
                     int is_weighted, array[] int agent, array[] int task, vector x, vector ability,
                     real delta, vector r_diff, real sigma_disc, vector z_disc) {
    return binomial_logit_weighted(n_success, n_runs[start:end], cells_eta(start, end, agent, task,
                                   x, ability, delta, r_diff, sigma_disc, z_disc),
                                   weight[start:end], is_weighted);
  }
}
data {
#include data.stan
  int<lower=0> grainsize;                     // cells per reduce_sum slice; 0 = one thread
}
transformed data {
  int is_weighted = min(weight) != 1 || max(weight) != 1;
  // Centring at the suite's mean log2 length decorrelates intercepts and slopes.
  real centre = mean(log_minutes) / log(2);
  vector[T] x = log_minutes / log(2) - centre;
  vector[G] x_grid = log_minutes_grid / log(2) - centre;
  // Each task's difficulty residual is sampled non-centred where its runs say little about it
  // (a funnel with sigma_diff otherwise) and centred where they pin it down (non-centred then
  // ties every z to sigma_diff). The Fisher information of a task's logit offset, the sum of
  // weight * n p (1 - p) over its cells, decides: >= 25 means the likelihood alone fixes the
  // residual to 0.2 logit. The real datasets stay non-centred (at most 25 per task); the
  // 160,000-run scale-up (17-50 per task) is mostly centred; a prior draw (weights 0) is
  // non-centred throughout.
  vector[T] task_info = rep_vector(0, T);
  for (n in 1:N) {
    real p_hat = (n_success[n] + 0.5) / (n_runs[n] + 1.0);
    task_info[task[n]] += weight[n] * n_runs[n] * p_hat * (1 - p_hat);
  }
  vector[T] centred;
  for (t in 1:T) centred[t] = task_info[t] >= 25;
  // 15-point Gauss-Hermite rule for E[f(Z)], Z ~ normal(0, 1): integrates task-level effects
  // out of p_curve (error < 1e-3 for logit sd up to 3).
#include gauss_hermite.stan
}
parameters {
  vector[A] ability;
  real delta;
  real<lower=0> sigma_diff;
  real<lower=0> sigma_disc;
  // multiplier 1 samples the effect itself (centred), multiplier sigma its z-score (non-centred)
  vector<multiplier=centred + (1 - centred) * sigma_diff>[T] r_diff;
  sum_to_zero_vector[T] z_disc;
}
model {
  ability ~ normal(0, 2.5);
  delta ~ normal(0.7, 0.7);
  sigma_diff ~ normal(0, 1);
  sigma_disc ~ normal(0, 0.5);
  r_diff ~ normal(0, sigma_diff);
  z_disc ~ std_normal();
  if (grainsize > 0) {
    target += reduce_sum(cells_log_lik, n_success, grainsize, n_runs, weight, is_weighted, agent,
                         task, x, ability, delta, r_diff, sigma_disc, z_disc);
  } else {
    target += cells_log_lik(n_success, 1, N, n_runs, weight, is_weighted, agent, task, x, ability,
                            delta, r_diff, sigma_disc, z_disc);
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  vector[T] difficulty = delta * x + r_diff;
  vector[T] discrimination = exp(sigma_disc * z_disc);
  {
    vector[N] eta = cells_eta(1, N, agent, task, x, ability, delta, r_diff, sigma_disc, z_disc);
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) {
    for (g in 1:G) {
      // two-dimensional quadrature over a new task's difficulty residual and discrimination
      real p = 0;
      for (j in 1:15) {
        p += gh_w[j] * dot_product(gh_w, inv_logit(exp(sigma_disc * gh_x[j])
                                                  * (ability[a] - delta * x_grid[g] - sigma_diff * gh_x)));
      }
      p_curve[a, g] = p;
    }
  }
}
