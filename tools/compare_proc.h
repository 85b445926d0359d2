/*
 * compare_proc.h — `herd compare`'s measuring processes. Each model is
 * measured in a child of its own (fork), so that the child's peak resident
 * set (wait4's ru_maxrss) is that model's peak memory, and so that several
 * models can be loaded, resident, side by side while the parent interleaves
 * their bench runs:
 *
 *   load      the models one after another (each load timed alone);
 *   warm-up   one pp and one tg run of each, untimed;
 *   rounds    round r runs every model's pp, then every model's tg, in the
 *             order A B C for even r and C B A for odd r, so that neither a
 *             drift of the machine's speed nor the place in a round favours
 *             a model;
 *   quality   perplexity and the task, one model at a time, then the child
 *             exits and its peak RSS is taken.
 *
 * Models that do not fit in memory together are measured in groups that do
 * (compare_plan); the report then says the runs were not all interleaved.
 */
#ifndef HERD_COMPARE_PROC_H
#define HERD_COMPARE_PROC_H

#include "eval/eval.h"

/* Split models[0..n) into consecutive groups whose files fit in memory
 * together: group_end[g] is one past the last model of group g. Returns the
 * number of groups (1 when everything fits or memory cannot be read). */
int compare_plan(const char *const *models, int n, int *group_end);

/* Measure models[0..n) as above, interleaved; rows[i] gets model i's
 * figures (facts, speed with its spread, quality, peak RSS, predictions) or
 * its error. Progress goes to stderr; label_base numbers the models in it. */
void compare_group(const char *const *models, int n, int label_base, int n_total,
                   const herd_compare_opts *o, herd_compare_row *rows);

#endif
