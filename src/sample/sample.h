/*
 * sample.h — samplers: the implementation of herd_sampler_* in herd.h.
 *
 * The chain follows llama.cpp's common defaults: repetition penalty over the
 * last repeat_last_n accepted tokens, then top-k, top-p, min-p, temperature,
 * and a draw from the resulting distribution with a seeded RNG. temp <= 0 is
 * greedy: argmax of the (penalised) logits, the first index on ties.
 *
 * The RNG is xoshiro256** seeded through splitmix64 from params.seed, so a
 * seed gives the same sequence of draws on every machine. llama.cpp's own RNG
 * (std::mt19937 + std::discrete_distribution) is not reproduced: herd matches
 * llama.cpp's filtering, not its random stream. HERD_SEED_RANDOM (the default)
 * picks a seed from the clock; herd_sampler_seed() tells which one.
 */
#ifndef HERD_SAMPLE_H
#define HERD_SAMPLE_H

#include "util/util.h"

/* params.seed value meaning "pick a random seed". */
#define HERD_SEED_RANDOM UINT64_MAX

/* The seed actually in use (the chosen one when params.seed was random). */
uint64_t herd_sampler_seed(const herd_sampler *s);

#endif
