  // The data every zoo model reads (horizon_zoo/contract.py builds it; a model may add the
  // contract's optional variables, such as grainsize or release_year, after this include).
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
