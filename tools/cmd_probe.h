/*
 * cmd_probe.h — the probe as the commands use it: `herd probe` itself, and
 * cli_probe() for info, recommend and compare, which loads the stored probe
 * or measures it (saying why on stderr).
 */
#ifndef HERD_CMD_PROBE_H
#define HERD_CMD_PROBE_H

#include "catalog/predict.h"

/* Threads a prediction uses when -t is not given: the cores, at most the
 * probe's maximum. */
int cli_default_threads(void);
/* The stored probe, or a new one (stderr says so, and why). Returns 0, or 1
 * after printing the error. */
int cli_probe(herd_probe *p);

#endif
