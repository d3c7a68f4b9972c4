/* ---
name: logistic_pooled_slope
title: Logistic in log2 minutes with agent slopes partially pooled around a common slope
hypothesis: >-
  Each agent has its own slope, but slopes are drawn from one population; the posterior of the
  population sd tau_beta answers "how different are the slopes really?" (tau_beta near 0 is the
  shared-slope model, large tau_beta is METR's independent curves).
source: >-
  Hierarchical version of METR's per-agent logistic (Kwa et al. 2025, arXiv:2503.14499);
  partial pooling as in Gelman & Hill (2007), ch. 12-13.
keywords: [logistic, hierarchical, partial-pooling]
parameters:
  alpha[agent]: "log-odds of success on a task of the suite's mean log2 length"
  mu_beta: "population mean slope per doubling"
  tau_beta: "population sd of agent slopes"
  z_beta[agent]: "standardised agent slope (non-centred)"
generated:
  beta[agent]: "agent slope per doubling, mu_beta + tau_beta * z_beta"
priors:
  alpha: "normal(0, 2.5): weakly informative on the logit scale"
  mu_beta: "normal(-0.7, 0.7): centred on the Bradley-Terry slope -ln(2) per doubling"
  tau_beta: "half-normal(0, 0.5): slopes differing by more than ~1 per doubling are implausible"
  z_beta: "std_normal(): non-centred parameterisation"
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
  real mu_beta;
  real<lower=0> tau_beta;
  vector[A] z_beta;
}
model {
  vector[N] eta = alpha[agent] + (mu_beta + tau_beta * z_beta[agent]) .* x[task];
  alpha ~ normal(0, 2.5);
  mu_beta ~ normal(-0.7, 0.7);
  tau_beta ~ normal(0, 0.5);
  z_beta ~ std_normal();
  target += binomial_logit_weighted(n_success, n_runs, eta, weight, is_weighted);
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  vector[A] beta = mu_beta + tau_beta * z_beta;
  {
    vector[N] eta = alpha[agent] + (mu_beta + tau_beta * z_beta[agent]) .* x[task];
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) p_curve[a] = inv_logit(alpha[a] + beta[a] * x_grid)';
}
