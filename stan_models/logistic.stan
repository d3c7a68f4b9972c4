/* ---
name: logistic
title: METR per-agent logistic curve in log2 minutes
hypothesis: >-
  Each agent's success probability is a logistic function of log2 task length with its own
  intercept and slope, as in METR's time-horizon analysis (one curve per agent, fitted
  independently).
source: >-
  Kwa, West, Becker et al. (2025), "Measuring AI Ability to Complete Long Tasks", METR,
  arXiv:2503.14499.
keywords: [logistic, metr, per-agent, reference]
parameters:
  alpha[agent]: "log-odds of success on a task of the suite's mean log2 length"
  beta[agent]: "change in log-odds of success per doubling of task length (negative when longer is harder)"
generated:
  log2_h50[agent]: "log2 of the 50% horizon in minutes implied by alpha and beta"
priors:
  alpha: "normal(0, 2.5): weakly informative on the logit scale (Gelman et al. 2008)"
  beta: >-
    normal(-0.7, 0.7): centred on the Bradley-Terry slope -ln(2) per doubling; keeps 0 and
    slopes twice as steep inside 95%
--- */
functions {
#include binomial_logit_weighted.stan
  vector cells_eta(int start, int end, array[] int agent, array[] int task, vector x, vector alpha,
                   vector beta) {
    array[end - start + 1] int a = agent[start:end];
    return alpha[a] + beta[a] .* x[task[start:end]];
  }
  // Log likelihood of cells start..end: reduce_sum's partial sum, and the whole sum in one call
  // when grainsize is 0 (both paths share one likelihood).
  real cells_log_lik(array[] int n_success, int start, int end, array[] int n_runs, vector weight,
                     int is_weighted, array[] int agent, array[] int task, vector x, vector alpha,
                     vector beta) {
    return binomial_logit_weighted(n_success, n_runs[start:end], cells_eta(start, end, agent, task,
                                   x, alpha, beta),
                                   weight[start:end], is_weighted);
  }
}
data {
#include data.stan
  int<lower=0> grainsize;                     // cells per reduce_sum slice; 0 = one thread
}
transformed data {
  int is_weighted = min(weight) != 1 || max(weight) != 1;
  // Centring at the suite's mean length decorrelates intercept and slope; an agent with no
  // successes then has a well-behaved posterior instead of a ridge in (horizon, slope).
  real centre = mean(log_minutes) / log(2);
  vector[T] x = log_minutes / log(2) - centre;
  vector[G] x_grid = log_minutes_grid / log(2) - centre;
}
parameters {
  vector[A] alpha;
  vector[A] beta;
}
model {
  alpha ~ normal(0, 2.5);
  beta ~ normal(-0.7, 0.7);
  if (grainsize > 0) {
    target += reduce_sum(cells_log_lik, n_success, grainsize, n_runs, weight, is_weighted, agent,
                         task, x, alpha, beta);
  } else {
    target += cells_log_lik(n_success, 1, N, n_runs, weight, is_weighted, agent, task, x, alpha,
                            beta);
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  // METR's headline number, for reading the fit directly; horizons downstream use p_curve.
  vector[A] log2_h50 = centre - alpha ./ beta;
  {
    vector[N] eta = cells_eta(1, N, agent, task, x, alpha, beta);
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) p_curve[a] = inv_logit(alpha[a] + beta[a] * x_grid)';
}
