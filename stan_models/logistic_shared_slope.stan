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
  // The vectorised lpmf takes no weights: weighted fits (task weights, CV folds) use the kernel.
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
  if (is_weighted) {
    target += dot_product(weight, to_vector(n_success) .* eta - to_vector(n_runs) .* log1p_exp(eta));
  } else {
    target += binomial_logit_lpmf(n_success | n_runs, eta);
  }
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
