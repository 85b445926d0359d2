/*
 * jinja_filters.h — what the filter modules share: how a filter receives its
 * arguments and the helpers that give jinja2's argument conventions.
 * jinja_filters.c has the table and the scalar/string filters,
 * jinja_seqfilters.c the ones over sequences. Private to src/chat.
 */
#ifndef HERD_JINJA_FILTERS_H
#define HERD_JINJA_FILTERS_H

#include "chat/jinja.h"

/* Filters bind at most MAXP named parameters; a parameter not passed is
 * herd_jf_missing (an undefined with that hint), told apart by given(). */
#define MAXP 4
extern const char herd_jf_missing[];
static inline bool given(jv v)
{
    return !(v.kind == JV_UNDEF && v.u.hint == herd_jf_missing);
}

typedef struct fcall {
    jrender *r;
    jscope *s;
    int line;
    jv *args; /* raw positional and keyword arguments (for the variadic filters) */
    size_t nargs;
    char **kwn;
    jv *kw;
    size_t nkw;
} fcall;

/* A filter: v the input, p[MAXP] its bound parameters. */
typedef herd_status (*filter_fn)(fcall *c, jv v, jv *p, jv *out);

herd_status herd_jf_need_str(fcall *c, jv v, const char *filter);
/* str(v), as the filters that apply jinja2's soft_str. */
herd_status herd_jf_to_s(fcall *c, jv v, jv *out);
/* jinja2's make_attrgetter: "a.b.0" looked up item-first; def when undefined. */
herd_status herd_jf_attr_get(fcall *c, jv item, jv attr, jv def, jv *out);
/* Append n copies of ch; a width beyond HERD_CHAT_MAX_OUTPUT is refused
 * before anything is written. false (the limit recorded) if it does not fit. */
bool herd_jf_fill(jbuf *b, char ch, int64_t n);
/* The items of an iterable, as a list. */
herd_status herd_jf_iter(fcall *c, jv v, jv *out);
/* A sort / unique / sum key: the attribute if given, lower-cased unless cs. */
herd_status herd_jf_sort_key(fcall *c, jv item, jv attr, bool cs, jv *out);

herd_status herd_f_first(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_last(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_items(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_join(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_list(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_reverse(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_sort(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_sum(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_unique(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_map(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_select(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_reject(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_selectattr(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_rejectattr(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_max(fcall *c, jv v, jv *p, jv *out);
herd_status herd_f_min(fcall *c, jv v, jv *p, jv *out);

#endif
