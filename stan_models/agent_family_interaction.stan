/* ---
name: agent_family_interaction
title: Logistic with task effects plus agent-by-family interactions
hypothesis: >-
  Agents are not uniformly better or worse: each agent has its own offset on each task family
  (some agents are good at cryptography, others at ML engineering), on top of task and family
  difficulty. Aimed at the residual task-by-task block structure within families that task
  effects alone leave behind.
source: >-
  Extension of logistic_task_effects with agent x family random intercepts, as in crossed
  random-effects IRT (De Boeck & Wilson 2004); targets the within-family residual correlations
  discussed in METR's time-horizon analysis (arXiv:2503.14499).
keywords: [logistic, task-effects, interaction, families, hierarchical]
adapt_delta: 0.95
parameters:
  alpha[agent]: >-
    log-odds of success on the suite's tasks at their mean log2 length (agent intercept plus
    the mean task and family offset plus the agent's mean agent-by-family offset)
  beta[agent]: "change in log-odds per doubling of task length"
  tau_family: "sd of family difficulty offsets (logit scale)"
  tau_task: "sd of task offsets within a family (logit scale)"
  z_family[family]: "standardised family offset minus the families' mean (non-centred, sums to zero)"
  z_family_mean: "mean of the standardised family offsets"
  z_task[task]: "standardised task offset minus the tasks' mean (non-centred, sums to zero)"
  z_task_mean: "mean of the standardised task offsets"
  tau_af: "sd of agent-by-family offsets (logit scale)"
  z_af[agent, family]: "standardised agent-by-family offset (non-centred)"
priors:
  alpha: >-
    through alpha - tau_family * z_family_mean - tau_task * z_task_mean - tau_af * mean(z_af[a])
    ~ normal(0, 2.5), the agent intercept for a typical task: weakly informative on the logit
    scale. alpha also carries the agent's mean agent-by-family offset (row a of z_af) for the
    same reason as the means below: raising an agent's intercept and lowering all its family
    offsets by the same amount leaves the likelihood unchanged. Each carried mean is a shift of
    alpha with unit Jacobian, so the model is unchanged; the likelihood sees the offsets relative
    to their means. Not split: a family's mean agent-by-family offset against its family offset
    (the shift that would carry it is scaled by tau_af / tau_family; tried, it sampled more slowly)
  beta: "normal(-0.7, 0.7): centred on the Bradley-Terry slope -ln(2) per doubling"
  tau_family: "half-normal(0, 1): family offsets of a few logits at most"
  tau_task: "half-normal(0, 1): task offsets of a few logits at most"
  z_family: >-
    std_normal() on the zero-sum subspace; with z_family_mean ~ normal(0, 1 / sqrt(F)) exactly F
    independent std_normal() offsets. Why split them: raising every agent and lowering every
    family (or task) by the same amount leaves the likelihood unchanged; sampled through the raw
    offsets that direction correlated the mean intercept with the mean family offset at -0.58
    (R-hat 1.010 on metr-early). Here the means enter only priors
  z_family_mean: "normal(0, 1 / sqrt(F)): the mean of F independent std_normal() offsets"
  z_task: "std_normal() on the zero-sum subspace, as z_family"
  z_task_mean: "normal(0, 1 / sqrt(T)): the mean of T independent std_normal() offsets"
  tau_af: "half-normal(0, 1): agent strengths that differ across families by a few logits at most"
  z_af: "std_normal(): non-centred"
--- */
functions {
#include binomial_logit_weighted.stan
  vector cells_eta(int start, int end, array[] int agent, array[] int task, array[] int af_index,
                   vector x, vector alpha, vector beta, vector task_effect, vector af_effect) {
    array[end - start + 1] int a = agent[start:end];
    array[end - start + 1] int t = task[start:end];
    return alpha[a] + beta[a] .* x[t] + task_effect[t] + af_effect[af_index[start:end]];
  }
  // Log likelihood of cells start..end: reduce_sum's partial sum, and the whole sum in one call
  // when grainsize is 0 (both paths share one likelihood).
  real cells_log_lik(array[] int n_success, int start, int end, array[] int n_runs, vector weight,
                     int is_weighted, array[] int agent, array[] int task, array[] int af_index,
                     vector x, vector alpha, vector beta, vector task_effect, vector af_effect) {
    return binomial_logit_weighted(n_success, n_runs[start:end], cells_eta(start, end, agent, task,
                                   af_index, x, alpha, beta, task_effect, af_effect),
                                   weight[start:end], is_weighted);
  }
}
data {
#include data.stan
  int<lower=0> grainsize;                     // cells per reduce_sum slice; 0 = one thread
}
transformed data {
  int is_weighted = min(weight) != 1 || max(weight) != 1;
  // Centring at the suite's mean log2 length decorrelates intercepts and slopes.
  real centre = mean(log_minutes) / log(2);
  vector[T] x = log_minutes / log(2) - centre;
  vector[G] x_grid = log_minutes_grid / log(2) - centre;
  // 15-point Gauss-Hermite rule for E[f(Z)], Z ~ normal(0, 1): integrates task-level effects
  // out of p_curve (error < 1e-3 for logit sd up to 3).
#include gauss_hermite.stan
  // z_af is stored column-major: agent a in family f sits at (f - 1) * A + a.
  array[N] int af_index;
  for (n in 1:N) af_index[n] = (family[task[n]] - 1) * A + agent[n];
}
parameters {
  vector[A] alpha;
  vector[A] beta;
  real<lower=0> tau_family;
  real<lower=0> tau_task;
  sum_to_zero_vector[F] z_family;
  real z_family_mean;
  sum_to_zero_vector[T] z_task;
  real z_task_mean;
  real<lower=0> tau_af;
  matrix[A, F] z_af;
}
model {
  vector[T] task_effect = tau_family * z_family[family] + tau_task * z_task;
  vector[A] af_row_mean = z_af * rep_vector(inv(F), F);
  vector[A * F] af_effect = tau_af * to_vector(z_af - rep_matrix(af_row_mean, F));
  // alpha carries the mean offsets; the typical-task intercept is alpha minus them (unit Jacobian).
  alpha - tau_family * z_family_mean - tau_task * z_task_mean - tau_af * af_row_mean ~ normal(0, 2.5);
  z_family_mean ~ normal(0, inv_sqrt(F));
  z_task_mean ~ normal(0, inv_sqrt(T));
  beta ~ normal(-0.7, 0.7);
  tau_family ~ normal(0, 1);
  tau_task ~ normal(0, 1);
  z_family ~ std_normal();
  z_task ~ std_normal();
  tau_af ~ normal(0, 1);
  to_vector(z_af) ~ std_normal();
  if (grainsize > 0) {
    target += reduce_sum(cells_log_lik, n_success, grainsize, n_runs, weight, is_weighted, agent,
                         task, af_index, x, alpha, beta, task_effect, af_effect);
  } else {
    target += cells_log_lik(n_success, 1, N, n_runs, weight, is_weighted, agent, task, af_index, x,
                            alpha, beta, task_effect, af_effect);
  }
}
generated quantities {
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  matrix[A, G] p_curve_typical;
  {
    vector[A] af_row_mean = z_af * rep_vector(inv(F), F);
    vector[T] task_effect = tau_family * z_family[family] + tau_task * z_task;
    vector[A * F] af_effect = tau_af * to_vector(z_af - rep_matrix(af_row_mean, F));
    vector[N] eta = cells_eta(1, N, agent, task, af_index, x, alpha, beta, task_effect, af_effect);
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
    real s = sqrt(square(tau_family) + square(tau_task) + square(tau_af));
    for (a in 1:A) {
      for (g in 1:G) {
        real m = alpha[a] - tau_family * z_family_mean - tau_task * z_task_mean - tau_af * af_row_mean[a]
                 + beta[a] * x_grid[g];
        p_curve[a, g] = dot_product(gh_w, inv_logit(m + s * gh_x));
        p_curve_typical[a, g] = inv_logit(m);
      }
    }
  }
}
