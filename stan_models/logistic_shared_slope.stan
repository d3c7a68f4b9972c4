/* ---
name: logistic_shared_slope
title: Logistic in log2 minutes with one slope shared by every agent
hypothesis: >-
  Agents differ only in where their success curve sits on the length axis, not in how steeply
  it falls: one slope per doubling for all agents, as the Bradley-Terry reading predicts for a
  fixed task distribution (there the slope is ln 2 per doubling). Every agent then has the same
  ratio of 80% to 50% horizon.
source: >-
  METR's logistic (Kwa et al. 2025, arXiv:2503.14499) with the slope tied across agents, the
  shared-slope prediction of the Bradley-Terry / Elo reading of time horizons.
keywords: [logistic, shared-slope, bradley-terry]
parameters:
  alpha[agent]: "log-odds of success on a task of the suite's mean log2 length"
  beta: "change in log-odds per doubling of task length, the same for every agent"
priors:
  alpha: "normal(0, 2.5): weakly informative on the logit scale (Gelman et al. 2008)"
  beta: "normal(-0.7, 0.7): centred on the Bradley-Terry slope -ln(2) per doubling"
--- */
functions {
#include binomial_logit_weighted.stan
}
data {
#include data.stan
}
transformed data {
  // Unit weights take the vectorised lpmf, any other the weighted kernel (binomial_logit_weighted).
  int is_weighted = min(weight) != 1 || max(weight) != 1;
  // Centring at the suite's mean log2 length decorrelates intercepts and slopes.
  real centre = mean(log_minutes) / log(2);
  vector[T] x = log_minutes / log(2) - centre;
  vector[G] x_grid = log_minutes_grid / log(2) - centre;
}
parameters {
  vector[A] alpha;
  real beta;
}
model {
  vector[N] eta = alpha[agent] + beta * x[task];
  alpha ~ normal(0, 2.5);
  beta ~ normal(-0.7, 0.7);
  target += binomial_logit_weighted(n_success, n_runs, eta, weight, is_weighted);
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  {
    vector[N] eta = alpha[agent] + beta * x[task];
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) p_curve[a] = inv_logit(alpha[a] + beta * x_grid)';
}
