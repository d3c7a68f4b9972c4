/* ---
name: never_initialises
title: Test program whose log density is -inf everywhere (not a hypothesis)
hypothesis: >-
  None: every initial value is rejected, so sampling fails as a broken model would. Obeys the
  contract so that it reaches the sampler.
source: horizon-zoo test suite
keywords: [test]
parameters:
  mu: "a parameter the sampler never gets to move"
priors:
  mu: "none: the target is -inf"
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
parameters {
  real mu;
}
model {
  target += negative_infinity();
}
generated quantities {
  vector[N] log_lik = rep_vector(0, N);
  array[N] int y_rep = rep_array(0, N);
  matrix[A, G] p_curve = rep_matrix(inv_logit(mu), A, G);
}
