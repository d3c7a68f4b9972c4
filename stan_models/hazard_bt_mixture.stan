/* ---
name: hazard_bt_mixture
title: More subtasks and harder subtasks - constant hazard times a Bradley-Terry hardest step
hypothesis: >-
  Longer tasks have both more subtasks and harder subtasks. Derivation: a task of m minutes
  consists of about m/s steps of s minutes; each step fails independently with probability
  lambda * s, so surviving all steps has probability (1 - lambda s)^(m/s) -> exp(-lambda m).
  Its hardest step has a difficulty that grows like log m (the maximum of m/s draws from a
  light-tailed, Gumbel-domain difficulty distribution grows with the log of their number), and
  the agent clears it with Bradley-Terry probability inv_logit(theta - log m). Success needs
  both: p = exp(-lambda_a m) * inv_logit(theta_a - ln m). As lambda -> 0 this is
  bradley_terry; as theta -> infinity it is constant_hazard.
source: >-
  Combines the constant-hazard model (Ord 2025, "Is there a Half-Life for the Success Rates of
  AI Agents?") and the Bradley-Terry / Elo reading of METR's time horizons (arXiv:2503.14499).
keywords: [hazard, bradley-terry, mixture, subtasks]
parameters:
  h[agent]: >-
    soft minimum of the two terms' own 50% points (natural log minutes): close to the agent's
    50% horizon, which the data pin down whichever term produces it
  delta[agent]: >-
    hazard term's 50% point minus the hardest step's (natural log minutes): > 0 means the
    hardest step limits the agent, < 0 the many ordinary steps
generated:
  theta[agent]: "Bradley-Terry ability against the hardest step (natural log minutes)"
  log_lambda[agent]: "log hazard per minute of the many ordinary steps"
priors:
  theta: "normal(2, 4): as in bradley_terry"
  log_lambda: >-
    normal(-6, 3): half-life of 4.7 hours at the centre, so the hardest-step term explains
    short tasks unless the data ask for a hazard; 95% between 0.8 minutes and 69 days
  h: >-
    none of its own: the priors above are placed on theta and log_lambda, and the map from
    (h, delta) has unit Jacobian, so this is the same posterior as sampling theta and log_lambda.
    Why the change: an agent that succeeds only on the shortest tasks (GPT-3 on cyber-horizons)
    can owe that to either term, and in (theta, log_lambda) the two explanations form an L-shaped
    ridge that NUTS crossed badly (R-hat 1.017, 5 divergences); with h fixed by the data the ridge
    is a straight line in delta
  delta: "none of its own: see h"
--- */
functions {
  // logit(p) from log(p), stable for p near 0 and near 1.
  vector log_p_to_logit(vector log_p) {
    return log_p - log1m_exp(log_p);
  }
#include binomial_logit_weighted.stan
  vector cells_eta(int start, int end, array[] int agent, array[] int task, vector log_minutes,
                   vector theta, vector log_lambda) {
    array[end - start + 1] int a = agent[start:end];
    array[end - start + 1] int t = task[start:end];
    return log_p_to_logit(-exp(log_lambda[a] + log_minutes[t]) + log_inv_logit(theta[a] - log_minutes[t]));
  }
  // Log likelihood of cells start..end: reduce_sum's partial sum, and the whole sum in one call
  // when grainsize is 0 (both paths share one likelihood).
  real cells_log_lik(array[] int n_success, int start, int end, array[] int n_runs, vector weight,
                     int is_weighted, array[] int agent, array[] int task, vector log_minutes,
                     vector theta, vector log_lambda) {
    return binomial_logit_weighted(n_success, n_runs[start:end], cells_eta(start, end, agent, task,
                                   log_minutes, theta, log_lambda),
                                   weight[start:end], is_weighted);
  }
}
data {
#include data.stan
  int<lower=0> grainsize;                     // cells per reduce_sum slice; 0 = one thread
}
transformed data {
  int is_weighted = min(weight) != 1 || max(weight) != 1;
}
parameters {
  vector[A] h;
  vector[A] delta;
}
transformed parameters {
  // x_theta = theta and x_lambda = log(log 2) - log_lambda are the log lengths at which each term
  // alone gives 50%; h = -log(exp(-x_theta) + exp(-x_lambda)) and delta = x_lambda - x_theta,
  // inverted: x_theta = h + log1p_exp(-delta), x_lambda = h + log1p_exp(delta) (determinant
  // inv_logit(delta) + inv_logit(-delta) = 1).
  vector[A] theta = h + log1p_exp(-delta);
  vector[A] log_lambda = log(log2()) - h - log1p_exp(delta);
}
model {
  theta ~ normal(2, 4);
  log_lambda ~ normal(-6, 3);
  if (grainsize > 0) {
    target += reduce_sum(cells_log_lik, n_success, grainsize, n_runs, weight, is_weighted, agent,
                         task, log_minutes, theta, log_lambda);
  } else {
    target += cells_log_lik(n_success, 1, N, n_runs, weight, is_weighted, agent, task, log_minutes,
                            theta, log_lambda);
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  {
    vector[N] eta = cells_eta(1, N, agent, task, log_minutes, theta, log_lambda);
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) p_curve[a] = exp(-exp(log_lambda[a] + log_minutes_grid) + log_inv_logit(theta[a] - log_minutes_grid))';
}
