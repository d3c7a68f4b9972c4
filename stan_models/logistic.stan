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
keywords: [logistic, metr, per-agent]
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
data {
  int<lower=1> N;                             // binomial cells (agent x task)
  int<lower=1> A;                             // agents
  int<lower=1> T;                             // tasks
  int<lower=1> F;                             // task families
  array[N] int<lower=1, upper=A> agent;       // agent of each cell
  array[N] int<lower=1, upper=T> task;        // task of each cell
  array[T] int<lower=1, upper=F> family;      // family of each task
  vector[T] log_minutes;                      // natural log of human minutes per task
  array[N] int<lower=1> n_runs;               // runs per cell
  array[N] int<lower=0> n_success;            // successful runs per cell
  vector<lower=0>[N] weight;                  // likelihood weight per cell (1 = unweighted)
  int<lower=1> G;                             // grid points for curves
  vector[G] log_minutes_grid;                 // natural log of minutes on the grid
}
transformed data {
  // Weighted likelihoods cannot use the vectorised lpmf, so keep the fast path for the default.
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
  vector[N] eta = alpha[agent] + beta[agent] .* x[task];
  alpha ~ normal(0, 2.5);
  beta ~ normal(-0.7, 0.7);
  if (is_weighted) {
    for (n in 1:N) target += weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  } else {
    target += binomial_logit_lpmf(n_success | n_runs, eta);
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  // METR's headline number, for reading the fit directly; horizons downstream use p_curve.
  vector[A] log2_h50 = centre - alpha ./ beta;
  {
    vector[N] eta = alpha[agent] + beta[agent] .* x[task];
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) p_curve[a] = inv_logit(alpha[a] + beta[a] * x_grid)';
}
