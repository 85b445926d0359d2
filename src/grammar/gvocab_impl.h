/*
 * gvocab_impl.h — the per-vocabulary tables the matcher walks.
 *
 * Each token's piece (its bytes as generated text) and a byte trie over all
 * pieces: node 0 is the root; children are a first-child / next-sibling list;
 * tok[node] is the first token whose piece ends at the node, tok_next chains
 * the others with the same piece. End-of-generation tokens and tokens without
 * text are not in the trie.
 */
#ifndef HERD_GVOCAB_IMPL_H
#define HERD_GVOCAB_IMPL_H

#include "grammar/grammar.h"

struct herd_gvocab {
    int n_vocab;
    uint32_t *off; /* [n_vocab + 1]: piece i is bytes[off[i] .. off[i+1]) */
    uint8_t *bytes;
    bool *eog; /* [n_vocab] */
    uint32_t n_nodes;
    uint32_t *child, *sibling; /* [n_nodes], UINT32_MAX: none */
    uint8_t *byte;             /* [n_nodes] the byte leading into the node */
    int32_t *tok;              /* [n_nodes] first token ending here, -1: none */
    int32_t *tok_next;         /* [n_vocab] */
};

#endif
