/* ---
name: logistic_trend
title: METR logistic with agent horizons on a log-linear trend over release date
hypothesis: >-
  Each agent's success is METR's logistic curve in log2 task length, and the agents' 50%
  horizons lie on one straight line in log2 minutes against release date (the horizon doubles
  at a constant rate), with agent-level scatter around it. The trend is fitted jointly with the
  curves, so its doubling time carries every agent's uncertainty and the hypothesis can be
  compared with the others by LOO.
source: >-
  Kwa, West, Becker et al. (2025), "Measuring AI Ability to Complete Long Tasks", METR,
  arXiv:2503.14499 (the trend, there fitted by regression on point estimates); the joint
  hierarchical form is horizon-zoo's.
keywords: [logistic, metr, trend, release-date, hierarchical]
adapt_delta: 0.9
parameters:
  trend_level: "log2 50% horizon in minutes of an agent released at the mean release date of the data"
  trend_slope: "doublings of the 50% horizon per year"
  sigma_agent: "sd of agents' log2 50% horizons around the trend line, in doublings"
  z_agent[agent]: "each agent's standardised deviation from the trend line"
  beta[agent]: "change in log-odds of success per doubling of task length (negative)"
generated:
  log2_h50[agent]: "log2 of each agent's 50% horizon in minutes"
  doubling_months: "months per doubling of the trend's 50% horizon (12 / trend_slope)"
priors:
  trend_level: >-
    normal(centre, 5), centre the log2 geometric-mean length of the suite: a mid-range agent's horizon is
    within 5 doublings (x32) of the typical task with prior probability 68%, within 9.8 with 95%
  trend_slope: >-
    normal(0, 2): no trend at the centre; doubling every 3 months to halving every 3 months
    within 95%, so METR's 7-month doubling (1.7 per year) is well inside
  sigma_agent: >-
    gamma(2, 2): mean 1 doubling (agents scatter about that much around METR's trend), 95%
    below 2.4; zero density at 0 because no set of agents lies exactly on a line
  z_agent: >-
    std_normal(), so log2_h50 ~ normal(trend_level + trend_slope * (release_year - mean),
    sigma_agent): the trend itself
  beta: >-
    normal(-0.7, 0.7) truncated at 0: the Bradley-Terry slope -ln(2) per doubling at the centre;
    negative because an agent's 50% horizon is only defined when longer tasks are harder
--- */
functions {
#include binomial_logit_weighted.stan
}
data {
#include data.stan
  vector[A] release_year;                     // release date of each agent, decimal years
}
transformed data {
  int is_weighted = min(weight) != 1 || max(weight) != 1;
  vector[T] x = log_minutes / log(2);
  vector[G] x_grid = log_minutes_grid / log(2);
  real centre = mean(x);
  // Centring the dates decorrelates the trend's level and slope.
  vector[A] year = release_year - mean(release_year);
}
parameters {
  real trend_level;
  real trend_slope;
  real<lower=0> sigma_agent;
  // Non-centred: an agent's horizon is pinned to about 0.15 doublings, the same size as the
  // scatter around a good trend, and the centred form then diverges in the funnel at small sigma_agent.
  vector[A] z_agent;
  vector<upper=0>[A] beta;
}
transformed parameters {
  vector[A] log2_h50 = trend_level + trend_slope * year + sigma_agent * z_agent;
}
model {
  vector[N] eta = beta[agent] .* (x[task] - log2_h50[agent]);
  trend_level ~ normal(centre, 5);
  trend_slope ~ normal(0, 2);
  sigma_agent ~ gamma(2, 2);
  z_agent ~ std_normal();
  beta ~ normal(-0.7, 0.7);
  target += binomial_logit_weighted(n_success, n_runs, eta, weight, is_weighted);
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  real doubling_months = 12 / trend_slope;
  {
    vector[N] eta = beta[agent] .* (x[task] - log2_h50[agent]);
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) p_curve[a] = inv_logit(beta[a] * (x_grid - log2_h50[a]))';
}
