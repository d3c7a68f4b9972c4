/* ---
name: constant_hazard
title: Constant hazard per minute of human time (exponential survival)
hypothesis: >-
  Tasks are long chains of steps and each minute of human work carries the same chance of an
  unrecoverable failure for a given agent, so success decays exponentially with length:
  p = exp(-lambda_a * minutes). The 80% horizon is then ln(0.8)/ln(0.5) = 0.32 times the 50%
  horizon for every agent.
source: >-
  Ord, T. (2025), "Is there a Half-Life for the Success Rates of AI Agents?" (essay), fitted
  to METR's time-horizon data (arXiv:2503.14499).
keywords: [hazard, exponential, survival, half-life]
parameters:
  log_lambda[agent]: "log of the agent's hazard per minute of human task time"
generated:
  half_life[agent]: "task length in minutes at which the agent succeeds half the time, ln(2)/lambda"
priors:
  log_lambda: >-
    normal(-2.5, 4): a half-life of 8 minutes at the centre; 95% of prior half-lives lie between
    0.2 seconds and 15 days of human time
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
  vector[A] log_lambda;
}
model {
  // log p = -H with H = lambda * minutes; logit(p) = -H - log(1 - exp(-H)) stays finite for
  // the tiny hazards of one-second tasks and the huge ones of month-long tasks.
  vector[N] log_hazard = log_lambda[agent] + log_minutes[task];
  vector[N] eta = -exp(log_hazard) - log1m_exp(-exp(log_hazard));
  log_lambda ~ normal(-2.5, 4);
  target += binomial_logit_weighted(n_success, n_runs, eta, weight, is_weighted);
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  vector[A] half_life = log(2) * exp(-log_lambda);
  {
    vector[N] log_hazard = log_lambda[agent] + log_minutes[task];
    vector[N] eta = -exp(log_hazard) - log1m_exp(-exp(log_hazard));
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) p_curve[a] = exp(-exp(log_lambda[a] + log_minutes_grid))';
}
