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

typedef struct herd_gmatch herd_gmatch;

/* Constrain every draw (greedy too) to a grammar: the draw is checked first
 * and, if the grammar refuses it, the row is masked to the allowed tokens and
 * drawn again. From then on herd_sampler_accept() also advances the matcher,
 * so attach it after the prompt's tokens were accepted. The matcher stays the
 * caller's (NULL detaches it). When the grammar admits no token at all,
 * herd_sampler_sample() returns -1 with a message: the caller ends the output. */
herd_status herd_sampler_set_grammar(herd_sampler *s, herd_gmatch *m);
/* How many tokens the output may still take, this one included (-1: no
 * limit). With a grammar, the draws then steer toward a complete output by
 * the last of them: after each token the grammar must be completable in the
 * tokens left (counting a byte per token, what byte-fallback tokens take). */
void herd_sampler_set_budget(herd_sampler *s, int n_tokens);

/* The seed actually in use (the chosen one when params.seed was random). */
uint64_t herd_sampler_seed(const herd_sampler *s);

#endif
