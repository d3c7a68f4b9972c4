/* ---
name: family_discrimination
title: Task effects plus families that separate strong from weak agents more or less sharply
hypothesis: >-
  Agents' skill profiles over task families have one dimension: a family scales the agents'
  differences in ability by its own discrimination, so on some families the strong agents pull
  far ahead of the weak ones and on others everyone is close (a family-level 2PL discrimination
  on the agents' abilities: a rank-1 agent-by-family interaction whose agent loadings are the
  agents' own abilities). On top of logistic_task_effects' task and family difficulty offsets.
  Aimed at the within-family residual blocks with far fewer parameters than
  agent_family_interaction's A x F free offsets. p_curve is the curve for a new task of a new
  family (its difficulty and discrimination integrated out).
source: >-
  logistic_task_effects (METR's logistic, Kwa et al. 2025, arXiv:2503.14499, with crossed item
  effects, De Boeck & Wilson 2004) with a family-level discrimination as in the 2PL (Birnbaum
  1968) and testlet models (Bradlow, Wainer & Wang 1999); proposed in horizon-zoo issue 27.
keywords: [logistic, task-effects, hierarchical, families, discrimination, irt]
parameters:
  alpha[agent]: >-
    log-odds of success on a typical task (offsets 0) of the suite's mean log2 length in a
    family of discrimination 1
  beta[agent]: "change in log-odds per doubling of task length"
  tau_family: "sd of family difficulty offsets (logit scale)"
  tau_task: "sd of task offsets within a family (logit scale)"
  z_family_total[family]: >-
    standardised total offset of a family: its family offset plus the mean of its tasks'
    offsets, whose sd is sqrt(tau_family^2 + tau_task^2 / n_f) for a family of n_f tasks
  z_task[task]: "standardised task offset; only its deviation from its family's mean enters"
  tau_disc: "sd of the families' log discriminations"
  z_disc[family]: >-
    standardised log discrimination of a family, summing to zero over families: the families'
    geometric-mean discrimination is 1
generated:
  task_effect[task]: "task's difficulty offset on the logit scale (family + task)"
  discrimination[family]: "exp(tau_disc * z_disc): the factor on the agents' ability differences"
priors:
  alpha: "normal(0, 2.5): weakly informative on the logit scale"
  beta: "normal(-0.7, 0.7): centred on the Bradley-Terry slope -ln(2) per doubling"
  tau_family: "half-normal(0, 1): family offsets of a few logits at most"
  tau_task: "half-normal(0, 1): task offsets of a few logits at most"
  z_family_total: >-
    std_normal(); with z_task ~ std_normal() exactly family offset ~ normal(0, tau_family) and
    task offset ~ normal(0, tau_task), sampled as in logistic_task_effects
  z_task: "std_normal(): its within-family deviations are the task offsets / tau_task"
  tau_disc: >-
    half-normal(0, 0.5): a family's discrimination mostly within a factor exp(+-1.96 * 0.98),
    about 7, of the typical family's (0.98 is the prior's 95th percentile of tau_disc); 0 (every
    family alike, logistic_task_effects) is at the prior's mode
  z_disc: >-
    std_normal() on the zero-sum subspace. Why fix the mean: multiplying every discrimination by
    c and dividing the agents' spread of alpha around their mean by c changes no probability
    (the 2PL's scale indeterminacy), so only the priors would hold that direction. A new family
    (p_curve, a held-out family in CV) gets log discrimination ~ normal(0, tau_disc)
--- */
functions {
#include binomial_logit_weighted.stan
}
data {
#include data.stan
}
transformed data {
  int is_weighted = min(weight) != 1 || max(weight) != 1;
  // Centring at the suite's mean log2 length decorrelates intercepts and slopes.
  real centre = mean(log_minutes) / log(2);
  vector[T] x = log_minutes / log(2) - centre;
  vector[G] x_grid = log_minutes_grid / log(2) - centre;
  vector[F] tasks_in_family = rep_vector(0, F);
  for (t in 1:T) tasks_in_family[family[t]] += 1;
  // 15-point Gauss-Hermite rule for E[f(Z)], Z ~ normal(0, 1): integrates task-level effects
  // out of p_curve (error < 1e-3 for logit sd up to 3).
#include gauss_hermite.stan
  // 7-point rule of the same kind for a new family's log discrimination (a narrower spread).
  vector[7] gh7_x = [-3.7504397177257425, -2.366759410734541, -1.1544053947399682, 0,
                     1.1544053947399682, 2.366759410734541, 3.7504397177257425]';
  vector[7] gh7_w = [0.0005482688559722169, 0.030757123967586515, 0.24012317860501264,
                     0.4571428571428572, 0.24012317860501264, 0.030757123967586515,
                     0.0005482688559722169]';
}
parameters {
  vector[A] alpha;
  vector[A] beta;
  real<lower=0> tau_family;
  real<lower=0> tau_task;
  vector[F] z_family_total;
  vector[T] z_task;
  real<lower=0> tau_disc;
  sum_to_zero_vector[F] z_disc;
}
transformed parameters {
  // offset of each task: its family's total plus its deviation from the family's mean
  vector[T] task_effect;
  {
    vector[F] task_sum = rep_vector(0, F);
    for (t in 1:T) task_sum[family[t]] += z_task[t];
    vector[F] family_total = sqrt(square(tau_family) + square(tau_task) * inv(tasks_in_family)) .* z_family_total;
    task_effect = family_total[family] + tau_task * (z_task - (task_sum ./ tasks_in_family)[family]);
  }
}
model {
  // The agents' mean intercept is what a family's discrimination pivots about, so a family
  // changes only the spread: cell logit = mean(alpha) + d_f (alpha_a - mean(alpha)) + ...
  real alpha_mean = mean(alpha);
  vector[T] disc = exp(tau_disc * z_disc)[family];
  vector[N] eta = alpha_mean + disc[task] .* (alpha[agent] - alpha_mean) + beta[agent] .* x[task]
                  + task_effect[task];
  alpha ~ normal(0, 2.5);
  beta ~ normal(-0.7, 0.7);
  tau_family ~ normal(0, 1);
  tau_task ~ normal(0, 1);
  z_family_total ~ std_normal();
  z_task ~ std_normal();
  tau_disc ~ normal(0, 0.5);
  z_disc ~ std_normal();
  target += binomial_logit_weighted(n_success, n_runs, eta, weight, is_weighted);
}
generated quantities {
  vector[F] discrimination = exp(tau_disc * z_disc);
  vector[N] log_lik;
  array[N] int y_rep;
  matrix[A, G] p_curve;
  matrix[A, G] p_curve_typical;
  {
    real alpha_mean = mean(alpha);
    vector[N] eta = alpha_mean + discrimination[family[task]] .* (alpha[agent] - alpha_mean)
                    + beta[agent] .* x[task] + task_effect[task];
    y_rep = binomial_rng(n_runs, inv_logit(eta));
    for (n in 1:N) log_lik[n] = weight[n] * binomial_logit_lpmf(n_success[n] | n_runs[n], eta[n]);
  }
  {
    // A new task of a new family: offset ~ normal(0, s^2), log discrimination ~ normal(0, tau_disc^2).
    real s = sqrt(square(tau_family) + square(tau_task));
    real alpha_mean = mean(alpha);
    for (a in 1:A) {
      vector[7] spread = exp(tau_disc * gh7_x) * (alpha[a] - alpha_mean);
      for (g in 1:G) {
        real m = alpha_mean + beta[a] * x_grid[g];
        real p = 0;
        for (k in 1:7) p += gh7_w[k] * dot_product(gh_w, inv_logit(m + spread[k] + s * gh_x));
        p_curve[a, g] = p;
        p_curve_typical[a, g] = inv_logit(m + alpha[a] - alpha_mean);
      }
    }
  }
}
