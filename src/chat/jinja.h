/*
 * jinja.h — the inside of the chat-template interpreter (see chat.h).
 *
 * Values (jv) model the Python objects a jinja2 template handles: undefined,
 * None, bool, int, float, str, list/tuple, dict, plus namespace(), macros,
 * built-in functions, bound methods (s.strip, d.items) and the loop object.
 * Heap values are reference counted and immutable, except namespaces, the
 * only thing a sandboxed template can mutate; so the only possible reference
 * cycles go through namespaces, and the renderer breaks them at the end.
 *
 * Ownership: a function returning a jv returns a new reference; arguments are
 * borrowed unless the name ends in _take. Allocation failure does not unwind
 * through every caller: constructors return undefined and set herd_jv_nomem, which
 * the evaluator checks after each step.
 *
 * Strings are UTF-8; Python's code-point operations (len, s[i], slices,
 * strip, title, ...) decode as needed (jinja_str.c).
 */
#ifndef HERD_JINJA_H
#define HERD_JINJA_H

#include "chat/chat.h"
#include <stdint.h>

/* ----------------------------------------------------------------- values */

typedef enum jv_kind {
    JV_UNDEF,
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* also tuples (flag) */
    JV_DICT,
    JV_NS,     /* namespace(): a dict whose entries are attributes */
    JV_MACRO,  /* a {% macro %} */
    JV_FUNC,   /* a global function: range, namespace, raise_exception, ... */
    JV_METHOD, /* a method bound to its receiver: "abc".strip, d.items */
    JV_LOOP,   /* the `loop` variable of a for loop */
} jv_kind;

typedef struct jv_string {
    int refs;
    size_t len;
    char p[]; /* NUL-terminated */
} jv_string;

typedef struct jv jv;
typedef struct jv_list jv_list;
typedef struct jv_dict jv_dict;
typedef struct jv_macro jv_macro;
typedef struct jv_method jv_method;
typedef struct jv_loop jv_loop;

struct jv {
    jv_kind kind;
    union {
        bool b;
        int64_t i;
        double f;
        jv_string *s;
        jv_list *l;
        jv_dict *d; /* JV_DICT and JV_NS */
        jv_macro *m;
        jv_method *bm;
        jv_loop *lp;
        int fn;           /* JV_FUNC: a jfunc id */
        const char *hint; /* JV_UNDEF: the name that was missing (static/AST), or NULL */
    } u;
};

struct jv_list {
    int refs;
    bool tuple;
    uint8_t view;  /* what Python object the list stands for (JV_VIEW_*) */
    bool consumed; /* an iterator that has been iterated (it is empty now) */
    int depth;     /* 1 + the deepest item's depth (see herd_jv_depth) */
    size_t n, cap;
    jv *v;
};

struct jv_dict {
    int refs;
    int depth;  /* as for lists; a namespace counts 1, whatever it holds */
    bool scope; /* the variables of a scope: not a value, depth not tracked */
    size_t n, cap;
    jv_string **k;
    jv *v;
};

struct jv_method {
    int refs;
    jv self;
    const char *name; /* static string */
};

struct jv_loop {
    int refs;
    jv items; /* the list being iterated */
    size_t index0, length;
};

struct jnode;
struct jscope;
struct jv_macro {
    int refs;
    const struct jnode *def; /* the MACRO statement (lives in the template) */
    struct jscope *scope;    /* where it was defined (kept until render end) */
};

/* Set when a value could not be made: allocation failed, or the render's
 * budget (below) ran out. The evaluator stops at the next check. */
extern _Thread_local bool herd_jv_nomem;

/* ------------------------------------------------------------------ budget */

/* The budget of the render running on this thread (jinja_budget.c; the
 * limits are in chat.h). Thread-local, like herd_jv_nomem, because values are made
 * and compared deep inside helpers that know nothing of the render; one render
 * runs on one thread. Outside a render (parsing, named formats) nothing is
 * charged, but the depth of values and walks is still bounded. A limit hit sets
 * herd_jv_nomem, so every path that stops on allocation failure stops on it too, and
 * herd_jerr() then reports the limit instead of whatever failed because of it. */
typedef struct jbudget {
    bool active;
    uint64_t steps, next_check; /* the slow path runs when steps reach next_check */
    size_t bytes;               /* bytes written, not yet charged (< 64) */
    int walk;                   /* nesting of the current printing walk */
    int depth_seen;
    const atomic_bool *cancel;
    herd_chat_limit hit;
} jbudget;
extern _Thread_local jbudget herd_jv_budget;

void herd_jv_budget_start(const atomic_bool *cancel);
void herd_jv_budget_stop(size_t output);
bool herd_jv_budget_slow(void);
/* Record a limit hit (the first one wins); returns false. */
bool herd_jv_limit(herd_chat_limit which);
/* Charge n steps; false once the budget is spent (or the render cancelled). */
static inline bool jv_charge(uint64_t n)
{
    herd_jv_budget.steps += n;
    return herd_jv_budget.steps < herd_jv_budget.next_check || herd_jv_budget_slow();
}
/* Charge writing n bytes (a step per 64). */
bool herd_jv_charge_bytes(size_t n);
/* May a string of have bytes grow by add? false (limit recorded) if not. */
bool herd_jv_room(size_t have, size_t add);
/* May a value of this depth be made / a walk go this deep? */
bool herd_jv_depth_ok(int depth);
/* The error for herd_jv_nomem: the limit hit, or out of memory; line 0: none. */
herd_status herd_jv_stop_error(int line);

static inline jv jv_undef(const char *hint)
{
    return (jv){.kind = JV_UNDEF, .u.hint = hint};
}
static inline jv jv_none(void)
{
    return (jv){.kind = JV_NONE};
}
static inline jv jv_bool(bool b)
{
    return (jv){.kind = JV_BOOL, .u.b = b};
}
static inline jv jv_int(int64_t i)
{
    return (jv){.kind = JV_INT, .u.i = i};
}
static inline jv jv_float(double f)
{
    return (jv){.kind = JV_FLOAT, .u.f = f};
}
static inline jv jv_func(int fn)
{
    return (jv){.kind = JV_FUNC, .u.fn = fn};
}

jv herd_jv_retain(jv v);
void herd_jv_release(jv v);
/* Template constants (literals, text) are shared by concurrent renders, so
 * their counts must not change: mark them uncounted, free them with the AST. */
void herd_jv_set_constant(jv v);
void herd_jv_free_constant(jv v);

jv herd_jv_str(const char *p, size_t n);
jv herd_jv_cstr(const char *p);
static inline const char *jv_sp(jv v)
{
    return v.u.s->p;
}
static inline size_t jv_slen(jv v)
{
    return v.u.s->len;
}

/* Lists also stand in for the other sequences jinja2 templates meet. Dict
 * views print as dict_items([...]); iterators (what map, select, unique, ...
 * return in jinja2) are always true, single-pass, have no len() and cannot be
 * printed; range() objects cannot be printed either. */
enum {
    JV_VIEW_NONE,
    JV_VIEW_ITEMS,
    JV_VIEW_KEYS,
    JV_VIEW_VALUES,
    JV_VIEW_GENERATOR,
    JV_VIEW_REVERSED,
    JV_VIEW_RANGE
};
static inline bool jv_is_iterator(jv v)
{
    return v.kind == JV_LIST &&
           (v.u.l->view == JV_VIEW_GENERATOR || v.u.l->view == JV_VIEW_REVERSED);
}
jv herd_jv_list_new(size_t cap, bool tuple);
/* The nesting depth of v: 0 for scalars, 1 for an empty list. */
int herd_jv_depth(jv v);
/* Mark a new list as an iterator / view (returns it). */
jv herd_jv_list_as(jv list, int view);
void herd_jv_list_push_take(jv list, jv item);
jv herd_jv_dict_new(void);
jv herd_jv_ns_new(void);
/* Insert or replace (keeps the first position, as Python dicts do). */
void herd_jv_dict_set_take(jv dict, const char *key, size_t klen, jv val);
/* Append a key known to be new (a copy of a dict, JSON input): no search. */
void herd_jv_dict_append_take(jv dict, jv_string *key, jv val);
/* Drop every entry (breaks namespace cycles at the end of a render). */
void herd_jv_dict_clear(jv dict);
/* Borrowed value, or NULL if absent. */
const jv *herd_jv_dict_get(jv dict, const char *key, size_t klen);
jv herd_jv_method_new(jv self, const char *name);
jv herd_jv_loop_new(jv items, size_t index0);

/* Python semantics. */
bool herd_jv_truthy(jv v);
bool herd_jv_is_number(jv v); /* bool, int, float */
static inline bool jv_is_intlike(jv v)
{
    return v.kind == JV_INT || v.kind == JV_BOOL;
}
static inline int64_t jv_ival(jv v)
{
    return v.kind == JV_BOOL ? v.u.b : v.u.i;
}
double herd_jv_num(jv v);
bool herd_jv_equal(jv a, jv b);
/* Ordering: *cmp <0, 0, >0; false if the types cannot be ordered. */
bool herd_jv_compare(jv a, jv b, int *cmp);
const char *herd_jv_type_name(jv v); /* Python's type name: 'str', 'dict', ... */

/* ------------------------------------------------------- string building */

typedef struct jbuf {
    char *p;
    size_t n, cap;
} jbuf;

void herd_jbuf_put(jbuf *b, const char *s, size_t n);
void herd_jbuf_puts(jbuf *b, const char *s);
void herd_jbuf_putc(jbuf *b, char c);
void herd_jbuf_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
jv herd_jbuf_to_str(jbuf *b); /* frees the buffer */
void herd_jbuf_free(jbuf *b);

/* str(v) and repr(v) appended to b. false if v has no printable form here
 * (a macro, a bound method): the caller reports it. */
bool herd_jv_to_str(jbuf *b, jv v);
bool herd_jv_repr(jbuf *b, jv v);
/* str(v) as a new string value (strings are returned as is). */
jv herd_jv_stringify(jv v, bool *ok);
void herd_jv_float_repr(jbuf *b, double f);

/* --------------------------------------------------------------- strings */

/* Decode one code point at s[*i] (advancing *i); invalid bytes decode as
 * themselves so that nothing is lost. */
uint32_t herd_u8_next(const char *s, size_t n, size_t *i);
void herd_u8_put(jbuf *b, uint32_t cp);
size_t herd_u8_len(const char *s, size_t n); /* code points */
/* Byte offset of code point k (k <= length). */
size_t herd_u8_offset(const char *s, size_t n, size_t k);
bool herd_py_isspace(uint32_t cp);
uint32_t herd_py_lower(uint32_t cp);
uint32_t herd_py_upper(uint32_t cp);
bool herd_py_iscased(uint32_t cp);
bool herd_py_isalpha(uint32_t cp);
bool herd_py_isdigit(uint32_t cp);

/* Python str operations; chars NULL = whitespace. */
jv herd_pystr_strip(jv s, jv chars, bool left, bool right);
jv herd_pystr_split(jv s, jv sep, int64_t maxsplit, bool *ok);
jv herd_pystr_splitlines(const char *s, size_t n);
/* The line at s[i] (str.splitlines' breaks): where its text ends; *next is
 * past its line break, n at the end. */
size_t herd_pystr_line(const char *s, size_t n, size_t i, size_t *next);
jv herd_pystr_case(jv s, int mode); /* 0 lower, 1 upper, 2 title (str.title), 3 capitalize,
                                  4 jinja |title */
jv herd_pystr_replace(jv s, jv old, jv neu, int64_t count);
jv herd_pystr_slice(jv s, bool has_start, int64_t start, bool has_stop, int64_t stop, int64_t step);
/* The next index of a slice running from *j towards stop (exclusive) by step;
 * false when there is none. Never overflows, whatever the step. */
static inline bool jinja_slice_next(int64_t *j, int64_t stop, int64_t step)
{
    if (step > 0 ? (stop - *j) - step <= 0 : (*j - stop) + step <= 0) return false;
    *j += step;
    return true;
}
jv herd_pystr_index(jv s, int64_t i); /* undefined if out of range */
int64_t herd_pystr_find(jv s, jv sub, bool reverse);
int64_t herd_pystr_count(jv s, jv sub);
jv herd_pystr_repeat(jv s, int64_t n);

/* ------------------------------------------------------------------ JSON */

jv herd_jv_from_json(const json_t *j);
/* Python's json.dumps(v, ensure_ascii, indent, separators, sort_keys).
 * indent < 0: None. item_sep/key_sep NULL: the defaults for indent. false
 * (message in *bad) if v holds something JSON cannot express. */
bool herd_jv_to_json(jbuf *b, jv v, bool ensure_ascii, int indent, const char *item_sep,
                     const char *key_sep, bool sort_keys, const char **bad);

/* ------------------------------------------------------------------ lexer */

typedef enum jtok_kind {
    TK_EOF,
    TK_TEXT,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP, /* op holds the operator text: "+", "//", "==", "(", ... */
} jtok_kind;

typedef struct jtok {
    jtok_kind kind;
    int line;
    char op[3];
    char *text; /* TEXT, NAME, STRING (decoded): malloc'ed */
    size_t len;
    int64_t ival;
    double fval;
} jtok;

typedef struct jtoks {
    jtok *v;
    size_t n, cap;
} jtoks;

herd_status herd_jinja_lex(const char *src, jtoks *out);
void herd_jinja_toks_free(jtoks *t);

/* ------------------------------------------------------------------- AST */

typedef enum jnode_kind {
    /* expressions */
    N_CONST,   /* val */
    N_NAME,    /* str */
    N_GETATTR, /* a.str */
    N_GETITEM, /* a[b] */
    N_SLICE,   /* a[b:c:d], each may be NULL */
    N_CALL,    /* a(args..., names=kwargs...) */
    N_FILTER,  /* a|str(args) ; a may be NULL inside {% filter %} */
    N_TEST,    /* a is [not] str(args); flag = negated */
    N_UNARY,   /* op a: "-", "+" */
    N_BINARY,  /* a op b: + - * / // % ** */
    N_CONCAT,  /* ~ chain in args */
    N_COMPARE, /* a op1 x1 op2 x2 ...: args are the operands, ops in names */
    N_AND,
    N_OR,
    N_NOT,
    N_COND,  /* b if a else c (c may be NULL) */
    N_LIST,  /* args */
    N_TUPLE, /* args */
    N_DICT,  /* args: key, value, key, value ... */
    /* statements */
    S_BODY,     /* args: statements */
    S_TEXT,     /* val (a string) */
    S_OUTPUT,   /* {{ a }} */
    S_IF,       /* a: test, b: body, c: else (an S_IF for elif, or S_BODY) */
    S_FOR,      /* names: targets; a: iterable; b: body; c: else; d: filter */
    S_SET,      /* names: targets (1 = plain); a: value; str: namespace attr */
    S_SETBLOCK, /* names[0]; b: body; d: filter chain (N_FILTER on NULL) */
    S_MACRO,    /* str: name; names: params; args: defaults (NULL = none); b: body */
    S_BREAK,
    S_CONTINUE,
    S_FILTERBLOCK, /* d: filter chain; b: body */
    S_WITH,        /* names: targets; args: values; b: body */
} jnode_kind;

typedef struct jnode {
    jnode_kind kind;
    int line;
    const char *op; /* operator for UNARY/BINARY (static) */
    bool flag;      /* TEST: negated; MACRO: uses varargs; CALL/FILTER: has kwargs */
    bool flag2;     /* MACRO: uses kwargs */
    jv val;
    char *str;
    struct jnode *a, *b, *c, *d;
    struct jnode **args;
    size_t nargs;
    char **names; /* kwarg names parallel to the tail of args, targets, params */
    size_t nnames;
    int filter_id; /* FILTER / TEST: index into the builtin table */
} jnode;

struct herd_chat_template {
    jnode *root;
    jnode **all; /* every node, for freeing */
    size_t nall, capall;
};

herd_status herd_jinja_parse(const jtoks *toks, herd_chat_template *t);
void herd_jinja_nodes_free(herd_chat_template *t);

/* ------------------------------------------------------------- evaluator */

typedef struct jscope {
    struct jscope *parent;
    jv vars; /* a dict */
    bool captured;
    struct jscope *next_captured;
} jscope;

typedef struct jrender {
    jbuf out;
    jscope *globals;
    jscope *captured; /* scopes kept alive by macros, freed at the end */
    jv namespaces;    /* every namespace made, emptied at the end (cycles) */
    herd_status st;   /* the status of the error that stopped the render */
    jv filter_input;  /* the body text a {% filter %} / {% set %} chain applies to */
    int depth;        /* macro call depth */
    int eval_depth;   /* nesting of herd_jinja_eval / herd_jinja_exec (a stack bound) */
    bool raised;      /* raise_exception was called */
} jrender;

/* Control flow out of a statement. */
typedef enum jflow { JF_OK, JF_BREAK, JF_CONTINUE, JF_ERROR } jflow;

jscope *herd_jscope_new(jscope *parent); /* NULL (herd_jv_nomem set) if out of memory */
herd_status herd_jinja_eval(jrender *r, jscope *s, const jnode *n, jv *out);
jflow herd_jinja_exec(jrender *r, jscope *s, const jnode *n);
herd_status herd_jinja_call(jrender *r, jscope *s, jv fn, jv *args, size_t nargs, char **kwnames,
                            jv *kwargs, size_t nkw, int line, jv *out);
jv herd_jinja_lookup(jscope *s, const char *name);
void herd_jscope_set_take(jscope *s, const char *name, jv val);
/* getattr / getitem with the sandbox's rules (see jinja_methods.c). */
herd_status herd_jinja_getattr(jv obj, const char *name, int line, jv *out);
herd_status herd_jinja_getitem(jv obj, jv key, int line, jv *out);
/* Materialize an iterable as a list (dict: keys, str: chars, undefined: []). */
herd_status herd_jinja_iterate(jv v, int line, jv *out);

/* Operators (jinja_ops.c). op: "+", "-", "*", "/", "//", "%", "**"; for
 * int_op: '+', '-', '*', '/' (floor), '%', 'p' (power). compare: "==", "!=",
 * "<", "<=", ">", ">=", "in", "not in". */
herd_status herd_jinja_binop(const char *op, jv a, jv b, int line, jv *out);
herd_status herd_jinja_int_op(char op, int64_t x, int64_t y, int line, jv *out);
herd_status herd_jinja_compare(const char *op, jv a, jv b, int line, bool *out);

/* An error at a template line. */
herd_status herd_jerr(herd_status st, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The error for using an undefined value. */
herd_status herd_jerr_undef(jv v, int line);

/* ------------------------------------------------------------- builtins */

typedef enum jfunc { F_RANGE, F_NAMESPACE, F_DICT, F_RAISE, F_STRFTIME, F_COUNT } jfunc;

/* Filter / test tables: id >= 0 known, -1 unknown, -2 known to jinja2 but
 * not implemented by herd. */
int herd_jinja_filter_id(const char *name);
int herd_jinja_test_id(const char *name);
herd_status herd_jinja_filter(jrender *r, jscope *s, int id, jv val, jv *args, size_t nargs,
                              char **kwnames, jv *kwargs, size_t nkw, int line, jv *out);
herd_status herd_jinja_test(jrender *r, jscope *s, int id, jv val, jv *args, size_t nargs, int line,
                            bool *out);
herd_status herd_jinja_call_method(jrender *r, jv self, const char *name, jv *args, size_t nargs,
                                   char **kwnames, jv *kwargs, size_t nkw, int line, jv *out);
herd_status herd_jinja_call_func(jrender *r, int fn, jv *args, size_t nargs, char **kwnames,
                                 jv *kwargs, size_t nkw, int line, jv *out);
const char *herd_jinja_func_name(int fn);

#endif
