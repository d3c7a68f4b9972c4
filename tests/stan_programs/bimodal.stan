/* ---
name: bimodal
title: Test program with two separated modes (not a hypothesis)
hypothesis: >-
  None: mu has modes at -10 and +10 with almost no mass between, so chains started in different
  modes stay there and R-hat must exceed 1.1. Obeys the contract so it runs through fit_model.
source: horizon-zoo test suite
keywords: [test]
parameters:
  mu: "location with two separated modes"
priors:
  mu: "equal mixture of normal(-10, 0.5) and normal(10, 0.5)"
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
  target += log_mix(0.5, normal_lpdf(mu | -10, 0.5), normal_lpdf(mu | 10, 0.5));
}
generated quantities {
  vector[N] log_lik = rep_vector(0, N);
  array[N] int y_rep = rep_array(0, N);
  matrix[A, G] p_curve = rep_matrix(inv_logit(mu), A, G);
}
