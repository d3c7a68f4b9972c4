/* ---
name: bradley_terry_noisy_duration
title: Bradley-Terry with a random task intercept, read as a Berkson error in task length
hypothesis: >-
  The Bradley-Terry contest p = inv_logit(theta_a - ln m_t), slope 1 in natural-log minutes, where a task's
  effective length is its recorded human time times a log-normal factor, ln m_t ~ normal(ln recorded_t,
  sigma_dur): a Berkson error (the truth scatters around the record). With slope 1 this is exactly
  Bradley-Terry plus an independent random task intercept of sd sigma_dur, so sigma_dur takes up all task
  difficulty that length does not explain, not only error in human times: it is not an estimate of how far
  human times are off. Averaged over the intercept the curve against recorded length is flatter than slope 1
  (a logistic averaged over a normal effect), not the classical errors-in-variables attenuation (errors on
  the recorded side). p_curve: against recorded length, intercept integrated out; p_curve_typical: intercept 0.
source: >-
  Bradley-Terry reading of METR's horizons (arXiv:2503.14499) with a Berkson error (Berkson 1950), i.e. a random
  item intercept (De Boeck & Wilson 2004); the classical form (recorded ~ normal(true, sigma)) is not written.
keywords: [bradley-terry, random-task-intercept, berkson-error]
parameters:
  phi[agent]: "agent ability relative to the tasks' mean offset, theta - shift"
  shift: "mean over tasks of the log-length offsets ln m_t - ln recorded_t"
  delta0[task]: "task's log-length offset minus the mean offset (sums to zero over tasks)"
  sigma_dur: "sd of the tasks' log-length offsets: all task difficulty beyond recorded length, in log minutes"
generated:
  theta[agent]: "agent ability: natural log of its 50% horizon in effective minutes"
  log_minutes_true[task]: "each task's effective log length, ln m_t"
priors:
  phi: "through theta = phi + shift ~ normal(2, 4), as in bradley_terry"
  shift: "normal(0, sigma_dur / sqrt(T)): the mean of T independent normal(0, sigma_dur) offsets"
  delta0: >-
    the zero-sum part of T independent normal(0, sigma_dur) offsets, so that the offsets log_minutes_true -
    log_minutes = shift + delta0 are exactly independent normal(0, sigma_dur) as the hypothesis states. Why split
    them: shifting every true duration and every ability by the same amount leaves the likelihood unchanged, and
    sampling that direction through theta and log_minutes_true directly gave R-hat 1.03 on metr-early; here the
    likelihood involves only phi and delta0, and shift only the priors
  sigma_dur: >-
    half-normal(0, 1): below 1.96 with prior probability 95%, an sd of offsets up to a factor e^1.96, about 7
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
  // 15-point Gauss-Hermite rule for E[f(Z)], Z ~ normal(0, 1): integrates task-level effects
  // out of p_curve (error < 1e-3 for logit sd up to 3).
#include gauss_hermite.stan
}
parameters {
  vector[A] phi;
  real shift;
  sum_to_zero_vector[T] delta0;
  real<lower=0> sigma_dur;
}
transformed parameters {
  vector[A] theta = phi + shift;
  vector[T] log_minutes_true = log_minutes + shift + delta0;
}
model {
  // theta - log_minutes_true = phi - log_minutes - delta0: shift cancels out of the likelihood.
  vector[N] eta = phi[agent] - log_minutes[task] - delta0[task];
  theta ~ normal(2, 4);  // theta is phi plus a constant-Jacobian shift
  sigma_dur ~ normal(0, 1);
  shift ~ normal(0, sigma_dur / sqrt(T));
  // delta0 lives on a (T - 1)-dimensional subspace (Stan's isometric transform), so its density
  // has sigma_dur^-(T - 1): normal_lpdf's sigma_dur^-T is corrected by one log(sigma_dur).
  delta0 ~ normal(0, sigma_dur);
  target += log(sigma_dur);
  target += binomial_logit_weighted(n_success, n_runs, eta, weight, is_weighted);
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  matrix[A, G] p_curve_typical;
  {
    vector[N] eta = phi[agent] - log_minutes[task] - delta0[task];
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  for (a in 1:A) {
    for (g in 1:G) {
      p_curve[a, g] = dot_product(gh_w, inv_logit(theta[a] - log_minutes_grid[g] - sigma_dur * gh_x));
      p_curve_typical[a, g] = inv_logit(theta[a] - log_minutes_grid[g]);
    }
  }
}
