/*
 * report.c — `herd compare --html`: the comparison as one HTML page that
 * stands on its own. Everything is inline (CSS in a <style>, the charts as
 * <svg> elements drawn here), there is no script and no URL, so the file
 * opens the same from a mail attachment, offline, years later.
 *
 * The page: a line saying what was measured and how; the table (one
 * tr.model per model); a scatter of generation speed against quality
 * (svg#speed-quality, one circle.point per model: perplexity when a text
 * was given, lower is better, else task accuracy); a bar chart of memory
 * (svg#memory, one rect.bar per model for the peak RSS, a thinner rect.file
 * for the file size, a line.pred at herd's memory estimate); with a task, a
 * bar chart of its accuracy (svg#accuracy, one rect.acc per model for acc
 * and one rect.acc-norm for acc_norm, each with a line.err of one standard
 * error, and a line.chance at guessing). The table's predicted figures are
 * td.pred cells. Ids and classes are stable: tests assert on them.
 */
#include "eval/eval.h"
#include "util/util.h"

#include <math.h>
#include <string.h>

static const char *COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                               "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};
#define N_COLORS (sizeof COLORS / sizeof COLORS[0])

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

static const char *CSS =
    "body{font-family:sans-serif;margin:24px;color:#222;background:#fff}"
    "h1{font-size:22px}h2{font-size:17px;margin-top:28px}"
    "p.about{max-width:1100px;color:#444;font-size:13px}"
    "table{border-collapse:collapse;font-size:12px}"
    "th,td{border:1px solid #ccc;padding:4px 6px;text-align:right}td{white-space:nowrap}"
    "th{background:#eef1f5}td.l{text-align:left;white-space:normal;max-width:200px;overflow-wrap:"
    "anywhere}"
    "tr.failed td{color:#a00}"
    "svg.chart{background:#fcfcfc;border:1px solid #ddd}"
    "svg text{font-family:sans-serif;font-size:12px;fill:#333}"
    "line.axis{stroke:#444;stroke-width:1}line.grid{stroke:#e4e4e4;stroke-width:1}"
    "circle.point{stroke:#222;stroke-width:1;fill-opacity:.85}"
    "rect.file{fill:#bbb}td.pred{color:#555;background:#f7f7fb}"
    "line.pred{stroke:#000;stroke-width:2;stroke-dasharray:4 2}"
    "rect.acc-norm{fill-opacity:.5}line.err{stroke:#222;stroke-width:1.5}line.chance{stroke:#a00;"
    "stroke-dasharray:6 3}";

/* ----------------------------------------------------------- table */

/* A number in the cell that td opens, or a dash when it was not measured. */
static void cell_num_in(FILE *f, const char *td, double v, const char *fmt)
{
    fputs(td, f);
    if (v >= 0)
        fprintf(f, fmt, v);
    else
        fputs("&#8211;", f);
    fputs("</td>", f);
}

static void cell_num(FILE *f, double v, const char *fmt)
{
    cell_num_in(f, "<td>", v, fmt);
}

/* A value with its spread, or a dash when it was not measured. */
static void cell_pm(FILE *f, double v, double pm, const char *fmt)
{
    fputs("<td>", f);
    if (v >= 0)
        fprintf(f, fmt, v, pm);
    else
        fputs("&#8211;", f);
    fputs("</td>", f);
}

/* A predicted figure, set apart from the measured ones. */
static void cell_pred(FILE *f, double v, const char *fmt)
{
    cell_num_in(f, "<td class=\"pred\">", v, fmt);
}

static void cell_str(FILE *f, const char *s)
{
    fputs("<td class=\"l\">", f);
    if (s && *s)
        esc(f, s);
    else
        fputs("&#8211;", f);
    fputs("</td>", f);
}

static void table(FILE *f, const herd_compare_opts *o, const herd_compare_row *r, int n)
{
    fputs("<table id=\"models\"><thead><tr><th>model</th><th>name</th><th>architecture</th>"
          "<th>parameters (M)</th><th>file type</th><th>file size (MiB)</th>"
          "<th>peak memory (MiB)</th><th>predicted memory (MiB)</th><th>load (ms)</th>",
          f);
    fprintf(f,
            "<th>pp%d (t/s)</th><th>pp%d predicted (t/s)</th><th>tg%d (t/s)</th>"
            "<th>tg%d predicted (t/s)</th>",
            n ? r[0].pp_n : 0, n ? r[0].pp_n : 0, n ? r[0].tg_n : 0, n ? r[0].tg_n : 0);
    if (o->text_path) fputs("<th>perplexity</th><th>bits per byte</th>", f);
    if (o->task) fputs("<th>acc</th><th>acc_norm</th>", f);
    fputs("<th>licence (file)</th><th>licence (catalog)</th><th>context</th><th>note</th>"
          "</tr></thead><tbody>\n",
          f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "<tr class=\"model%s\" data-model=\"", r[i].error[0] ? " failed" : "");
        esc(f, r[i].label);
        fputs("\">", f);
        cell_str(f, r[i].label);
        cell_str(f, r[i].name);
        cell_str(f, r[i].arch);
        cell_num(f, r[i].params >= 0 ? r[i].params / 1e6 : -1, "%.2f");
        cell_str(f, r[i].file_type);
        cell_num(f, r[i].file_bytes >= 0 ? r[i].file_bytes / 1048576.0 : -1, "%.2f");
        cell_num(f, r[i].peak_rss_bytes >= 0 ? r[i].peak_rss_bytes / 1048576.0 : -1, "%.1f");
        cell_pred(f, r[i].mem_pred_bytes >= 0 ? r[i].mem_pred_bytes / 1048576.0 : -1, "%.1f");
        cell_num(f, r[i].load_s >= 0 ? r[i].load_s * 1e3 : -1, "%.1f");
        cell_pm(f, r[i].pp_ts, r[i].pp_sd, "%.1f &#177; %.1f");
        cell_pred(f, r[i].pp_pred, "%.1f");
        cell_pm(f, r[i].tg_ts, r[i].tg_sd, "%.1f &#177; %.1f");
        cell_pred(f, r[i].tg_pred, "%.1f");
        if (o->text_path) {
            cell_pm(f, r[i].ppl, r[i].ppl_err, "%.4f &#177; %.4f");
            cell_num(f, r[i].bpb, "%.4f");
        }
        if (o->task) {
            cell_num(f, r[i].acc, "%.4f");
            cell_num(f, r[i].acc_norm, "%.4f");
        }
        cell_str(f, r[i].licence);
        char cat[256] = "";
        if (r[i].catalog_id[0])
            snprintf(cat, sizeof cat, "%s (%s; commercial use: %s)", r[i].catalog_licence,
                     r[i].catalog_id, r[i].catalog_commercial);
        cell_str(f, cat);
        cell_num(f, r[i].ctx_train > 0 ? r[i].ctx_train : -1, "%.0f");
        cell_str(f, r[i].error);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

/* ----------------------------------------------------------- charts */

/* A "nice" step (1, 2 or 5 × 10^k) for about n ticks over span. */
static double nice_step(double span, int n)
{
    double raw = span / n, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

typedef struct {
    double x0, x1, y0, y1;  /* data range */
    double left, top, w, h; /* plot area in pixels */
} frame;

static double px(const frame *fr, double x)
{
    return fr->left + (x - fr->x0) / (fr->x1 - fr->x0) * fr->w;
}
static double py(const frame *fr, double y)
{
    return fr->top + fr->h - (y - fr->y0) / (fr->y1 - fr->y0) * fr->h;
}

/* Widen [lo, hi] to whole steps (and away from a zero width). */
static void extend(double *lo, double *hi, bool from_zero)
{
    if (from_zero && *lo > 0) *lo = 0;
    if (*hi - *lo < 1e-12) *lo -= 0.5 * (fabs(*lo) + 1e-3), *hi += 0.5 * (fabs(*hi) + 1e-3);
    double st = nice_step(*hi - *lo, 5);
    *lo = floor(*lo / st) * st;
    *hi = ceil(*hi / st) * st;
}

static void axes(FILE *f, const frame *fr, const char *xlabel, const char *ylabel)
{
    const double sx = nice_step(fr->x1 - fr->x0, 5), sy = nice_step(fr->y1 - fr->y0, 5);
    for (double x = fr->x0; x <= fr->x1 + sx * 1e-6; x += sx)
        fprintf(f,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                px(fr, x), fr->top, px(fr, x), fr->top + fr->h, px(fr, x), fr->top + fr->h + 16, x);
    for (double y = fr->y0; y <= fr->y1 + sy * 1e-6; y += sy)
        fprintf(f,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                fr->left, py(fr, y), fr->left + fr->w, py(fr, y), fr->left - 6, py(fr, y) + 4, y);
    fprintf(f,
            "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
            "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
            fr->left, fr->top + fr->h, fr->left + fr->w, fr->top + fr->h, fr->left, fr->top,
            fr->left, fr->top + fr->h);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
            fr->left + fr->w / 2, fr->top + fr->h + 38, xlabel);
    fprintf(f,
            "<text transform=\"translate(16,%.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
            fr->top + fr->h / 2, ylabel);
}

/* The quality figure of a row for the scatter, or < 0. */
static double quality(const herd_compare_opts *o, const herd_compare_row *r)
{
    return o->text_path ? r->ppl : o->task ? r->acc_norm : -1;
}

static void scatter(FILE *f, const herd_compare_opts *o, const herd_compare_row *r, int n)
{
    const char *ylabel = o->text_path ? "perplexity (lower is better)"
                         : o->task    ? "task accuracy, acc_norm (higher is better)"
                                      : "no quality measure";
    fputs("<h2>Speed and quality</h2>\n<svg id=\"speed-quality\" class=\"chart\" width=\"760\" "
          "height=\"440\" viewBox=\"0 0 760 440\" role=\"img\" aria-label=\"generation speed "
          "against quality\">\n",
          f);
    frame fr = {INFINITY, -INFINITY, INFINITY, -INFINITY, 80, 20, 520, 360};
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (r[i].tg_ts < 0 || quality(o, &r[i]) < 0) continue;
        fr.x0 = fmin(fr.x0, r[i].tg_ts), fr.x1 = fmax(fr.x1, r[i].tg_ts);
        fr.y0 = fmin(fr.y0, quality(o, &r[i])), fr.y1 = fmax(fr.y1, quality(o, &r[i]));
        k++;
    }
    if (k == 0) {
        fputs("<text x=\"380\" y=\"220\" text-anchor=\"middle\">nothing to plot: give --text or "
              "--task</text>\n</svg>\n",
              f);
        return;
    }
    extend(&fr.x0, &fr.x1, true);
    extend(&fr.y0, &fr.y1, false);
    axes(f, &fr, "generation speed (tokens/s, higher is better)", ylabel);
    for (int i = 0, j = 0; i < n; i++) {
        if (r[i].tg_ts < 0 || quality(o, &r[i]) < 0) continue;
        const double x = px(&fr, r[i].tg_ts), y = py(&fr, quality(o, &r[i]));
        fprintf(f, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"%s\"><title>", x,
                y, COLORS[i % N_COLORS]);
        esc(f, r[i].label);
        fprintf(f, ": %.1f tokens/s, %.4f</title></circle>\n", r[i].tg_ts, quality(o, &r[i]));
        /* Labels in a legend column, so that close points stay readable. */
        fprintf(f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"/><text x=\"%.1f\" "
                "y=\"%.1f\">",
                fr.left + fr.w + 24, fr.top + 10 + 20.0 * j, COLORS[i % N_COLORS],
                fr.left + fr.w + 34, fr.top + 14 + 20.0 * j);
        esc(f, r[i].label);
        fputs("</text>\n", f);
        j++;
    }
    fputs("</svg>\n", f);
}

static void memory_chart(FILE *f, const herd_compare_row *r, int n)
{
    const double bar = 26, gap = 14, top = 20, left = 220, width = 440;
    const double height = top + n * (bar + gap) + 50;
    fprintf(f,
            "<h2>Memory</h2>\n<svg id=\"memory\" class=\"chart\" width=\"760\" height=\"%.0f\" "
            "viewBox=\"0 0 760 %.0f\" role=\"img\" aria-label=\"peak memory and file size\">\n",
            height, height);
    double mx = 0;
    for (int i = 0; i < n; i++)
        mx = fmax(mx, fmax(fmax(r[i].peak_rss_bytes, r[i].file_bytes), r[i].mem_pred_bytes));
    frame fr = {0, mx > 0 ? mx / 1048576.0 : 1, 0, 1, left, top, width, n * (bar + gap)};
    extend(&fr.x0, &fr.x1, true);
    for (int i = 0; i < n; i++) {
        const double y = top + i * (bar + gap), peak = fmax(r[i].peak_rss_bytes, 0) / 1048576.0;
        const double file = fmax(r[i].file_bytes, 0) / 1048576.0;
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 8, y + bar / 2 + 4);
        esc(f, r[i].label);
        fprintf(f,
                "</text>\n<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                "fill=\"%s\"><title>peak memory %.1f MiB</title></rect>\n",
                left, y, px(&fr, peak) - left, bar, COLORS[i % N_COLORS], peak);
        fprintf(f,
                "<rect class=\"file\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">"
                "<title>file %.1f MiB</title></rect>\n",
                left, y + bar * 0.7, px(&fr, file) - left, bar * 0.3, file);
        if (r[i].mem_pred_bytes >= 0) {
            const double pred = r[i].mem_pred_bytes / 1048576.0;
            fprintf(f,
                    "<line class=\"pred\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\">"
                    "<title>predicted %.1f MiB</title></line>\n",
                    px(&fr, pred), y - 3, px(&fr, pred), y + bar + 3, pred);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%.1f MiB</text>\n", px(&fr, peak) + 6,
                y + bar / 2 + 4, peak);
    }
    const double base = top + n * (bar + gap);
    const double st = nice_step(fr.x1 - fr.x0, 5);
    for (double x = 0; x <= fr.x1 + st * 1e-6; x += st)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", px(&fr, x),
                base + 14, x);
    fprintf(f,
            "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">MiB: peak memory (colour), "
            "file size (grey), predicted (dashed)</text>\n</svg>\n",
            left, base, left + width, base, left + width / 2, base + 36);
}

/* One accuracy bar with its standard error, at row y (pixels). */
static void acc_bar(FILE *f, const frame *fr, const char *cls, const char *color, double y,
                    double h, double v, double err, const char *what)
{
    if (v < 0) return;
    fprintf(f,
            "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"%s\"><title>%s %.4f &#177; %.4f</title></rect>\n",
            cls, fr->left, y, px(fr, v) - fr->left, h, color, what, v, err);
    if (err > 0)
        fprintf(f, "<line class=\"err\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                px(fr, fmax(v - err, 0)), y + h / 2, px(fr, fmin(v + err, 1)), y + h / 2);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%s %.3f</text>\n", px(fr, fmin(v + err, 1)) + 6,
            y + h / 2 + 4, what, v);
}

/* The task's accuracy: acc (solid) and acc_norm (lighter) per model, with
 * one standard error, and the accuracy of guessing. */
static void accuracy_chart(FILE *f, const herd_compare_opts *o, const herd_compare_row *r, int n)
{
    const double bar = 16, gap = 16, top = 20, left = 220, width = 440;
    const double height = top + n * (2 * bar + gap) + 50;
    fprintf(f,
            "<h2>Task accuracy</h2>\n<svg id=\"accuracy\" class=\"chart\" width=\"760\" "
            "height=\"%.0f\" viewBox=\"0 0 760 %.0f\" role=\"img\" aria-label=\"task "
            "accuracy\">\n",
            height, height);
    const frame fr = {0, 1, 0, 1, left, top, width, n * (2 * bar + gap)};
    for (int i = 0; i < n; i++) {
        const double y = top + i * (2 * bar + gap);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 8, y + bar + 4);
        esc(f, r[i].label);
        fputs("</text>\n", f);
        acc_bar(f, &fr, "acc", COLORS[i % N_COLORS], y, bar, r[i].acc, r[i].acc_err, "acc");
        acc_bar(f, &fr, "acc-norm", COLORS[i % N_COLORS], y + bar + 2, bar - 2, r[i].acc_norm,
                r[i].acc_norm_err, "acc_norm");
    }
    const double base = top + n * (2 * bar + gap);
    double chance = 0;
    for (int q = 0; q < o->task->n; q++)
        chance += o->task->q[q].n_choices > 0 ? 1.0 / o->task->q[q].n_choices / o->task->n : 0;
    fprintf(f,
            "<line class=\"chance\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\">"
            "<title>guessing: %.3f</title></line>\n",
            px(&fr, chance), top - 6, px(&fr, chance), base, chance);
    for (int k = 0; k <= 5; k++)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                px(&fr, k / 5.0), base + 14, k / 5.0);
    fprintf(
        f,
        "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s accuracy: acc (upper "
        "bar), acc_norm (lower, lighter), &#177; one standard error; dashed red: guessing</text>\n"
        "</svg>\n",
        left, base, left + width, base, left + width / 2, base + 36,
        herd_mc_kind_name(o->task->kind));
}

herd_status herd_compare_html(FILE *f, const herd_compare_opts *o, const herd_compare_row *r, int n)
{
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>herd compare</title><style>%s</style></head><body>\n"
            "<h1>herd compare: %d models</h1>\n<p class=\"about\">",
            CSS, n);
    int reps = 0, pp_n = 0, tg_n = 0, ctx = 0;
    bool mixed = false;
    for (int i = 0; i < n; i++) {
        if (r[i].reps > 0 && !reps) reps = r[i].reps, pp_n = r[i].pp_n, tg_n = r[i].tg_n;
        if (r[i].ppl < 0) continue;
        mixed |= ctx && r[i].ppl_ctx != ctx;
        ctx = r[i].ppl_ctx;
    }
    fprintf(f,
            "Speed as herd bench measures it: one batch of %d tokens (pp) and %d single-token "
            "decodes (tg), a warm-up then %d runs each; median &#177; standard deviation; %s. "
            "Predicted: herd's performance model from this machine's probe (herd probe) and "
            "herd's memory estimate (herd info). ",
            pp_n, tg_n, reps,
            o->interleaved ? "every model resident, the runs interleaved across the models"
                           : "the models did not fit in memory together: runs interleaved within "
                             "groups that did");
    if (o->text_path) {
        fputs("Perplexity: llama.cpp's method on ", f);
        esc(f, o->text_path);
        if (mixed)
            fputs(" with chunks of min(training context, 512) tokens", f);
        else
            fprintf(f, " with chunks of %d tokens", ctx);
        fprintf(f, "%s; bits per byte: the same loss per byte of text. ",
                o->max_chunks >= 0 ? " (limited)" : "");
        bool other_vocab = false;
        for (int i = 1; i < n; i++)
            other_vocab |= r[i].ppl >= 0 && r[0].ppl >= 0 && r[i].vocab_hash != r[0].vocab_hash;
        if (other_vocab)
            fputs("<strong>These models have different vocabularies: their perplexities are over "
                  "different tokens and not comparable; bits per byte is.</strong> ",
                  f);
    }
    if (o->task) {
        fprintf(f, "Task: %s, %d questions from ", herd_mc_kind_name(o->task->kind), o->task->n);
        esc(f, o->task_path ? o->task_path : "?");
        fputs(", scored as lm-evaluation-harness does (acc, acc_norm). ", f);
    }
    fputs("Peak memory: the peak resident set of a process that loaded the model and ran all of "
          "the above. Licence (catalog): the herd catalog entry whose id the file's name "
          "contains.</p>\n",
          f);
    table(f, o, r, n);
    scatter(f, o, r, n);
    memory_chart(f, r, n);
    if (o->task) accuracy_chart(f, o, r, n);
    fputs("</body></html>\n", f);
    return ferror(f) ? herd_seterr(HERD_E_IO, "writing the report failed") : HERD_OK;
}
