/* ---
name: bradley_terry
title: Bradley-Terry contest between agent ability and task length (slope 1 in ln minutes)
hypothesis: >-
  Task length acts like an exponentiated Elo rating of the task: an agent of ability theta_a
  beats a task of log length ln(minutes) with probability inv_logit(theta_a - ln minutes). The
  slope in natural-log minutes is fixed at 1 for every agent, so theta_a is the log 50% horizon
  and the 80% horizon is always 1/4 of it.
source: >-
  Bradley & Terry (1952), "Rank analysis of incomplete block designs", Biometrika 39:324-345;
  read onto METR's time horizons (arXiv:2503.14499) by treating task length as an
  exponentiated Elo rating of the task.
keywords: [bradley-terry, elo, logistic, fixed-slope]
parameters:
  theta[agent]: "agent ability: natural log of its 50% horizon in minutes"
priors:
  theta: >-
    normal(2, 4): 50% horizon of 7 minutes at the centre; 95% between 0.2 seconds and 13 days
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
}
parameters {
  vector[A] theta;
}
model {
  vector[N] eta = theta[agent] - log_minutes[task];
  theta ~ normal(2, 4);
  target += binomial_logit_weighted(n_success, n_runs, eta, weight, is_weighted);
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  {
    vector[N] eta = theta[agent] - log_minutes[task];
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) p_curve[a] = inv_logit(theta[a] - log_minutes_grid)';
}
