/* ---
name: logistic_ceiling
title: Four-parameter logistic in log2 minutes - a ceiling below 1 and a guessing floor
hypothesis: >-
  Some failures have nothing to do with length (broken environments, ambiguous scoring), so
  even the shortest tasks succeed at most with probability ceiling < 1; and some successes
  are lucky guesses, so even impossibly long tasks succeed with probability guess > 0 (the floor).
  Between them each agent follows METR's logistic in log2 minutes:
  p = guess + (ceiling - guess) * inv_logit(alpha_a + beta_a * x). Ceiling and guess are
  shared by all agents.
source: >-
  Four-parameter logistic item response model (Barton & Lord 1981, ETS Research Report
  81-20) on METR's per-agent curves (arXiv:2503.14499).
keywords: [logistic, 4pl, ceiling, guess, guessing]
parameters:
  alpha[agent]: "log-odds of the length-dependent part on a task of mean log2 length"
  beta[agent]: "change in log-odds per doubling of task length"
  ceiling: "largest success probability, reached on the shortest tasks"
  guess: "smallest success probability, reached on the longest tasks"
priors:
  alpha: "normal(0, 2.5): weakly informative on the logit scale"
  beta: "normal(-0.7, 0.7): centred on the Bradley-Terry slope -ln(2) per doubling"
  ceiling: "beta(20, 1) on (0.5, 1): near 1 unless the data insist (prior mean 0.95)"
  guess: "beta(1, 20) on (0, 0.5): near 0 unless the data insist (prior mean 0.05)"
--- */
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
  vector[A] beta;
  real<lower=0.5, upper=1> ceiling;
  real<lower=0, upper=0.5> guess;
}
model {
  vector[N] eta = alpha[agent] + beta[agent] .* x[task];
  vector[N] p = guess + (ceiling - guess) * inv_logit(eta);
  alpha ~ normal(0, 2.5);
  beta ~ normal(-0.7, 0.7);
  ceiling ~ beta(20, 1);
  guess ~ beta(1, 20);
  if (is_weighted) {
    target += dot_product(weight, to_vector(n_success) .* log(p)
                                   + (to_vector(n_runs) - to_vector(n_success)) .* log1m(p));
  } else {
    target += binomial_lpmf(n_success | n_runs, p);
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  {
    vector[N] eta = alpha[agent] + beta[agent] .* x[task];
    vector[N] p = guess + (ceiling - guess) * inv_logit(eta);
    y_rep = binomial_rng(n_runs, p);
    for (n in 1:N) log_lik[n] = weight[n] * binomial_lpmf(n_success[n] | n_runs[n], p[n]);
  }
  for (a in 1:A) p_curve[a] = guess + (ceiling - guess) * inv_logit(alpha[a] + beta[a] * x_grid)';
}
