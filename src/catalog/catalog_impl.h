/*
 * catalog_impl.h — what the files of src/catalog share: the loaded catalog
 * (the JSON document and the typed view of its models) and small helpers for
 * reading facts.
 */
#ifndef HERD_CATALOG_IMPL_H
#define HERD_CATALOG_IMPL_H

#include "catalog/catalog.h"

#include <jansson.h>

struct herd_catalog {
    json_t *root;   /* owned */
    json_t *models; /* borrowed from root */
    herd_catalog_model *m;
    int n;
    double overhead_gb;
    const char *overhead_source;
};

/* The member key of obj if it is a fact (an object with a string "source"),
 * else NULL. */
static inline const json_t *catalog_fact(const json_t *obj, const char *key)
{
    const json_t *f = json_object_get(obj, key);
    return json_is_object(f) && json_is_string(json_object_get(f, "source")) ? f : NULL;
}

static inline const char *catalog_source(const json_t *fact)
{
    return json_string_value(json_object_get(fact, "source"));
}

#endif
