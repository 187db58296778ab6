// storage/quality.c — see quality.h: the signals of a row and the filter on them.
#include "storage/quality.h"

#include <math.h>

rec_quality_params rec_quality_default_params(void)
{
    return (rec_quality_params){.min_rate = REC_Q_DEFAULT_MIN_RATE,
                                .max_rate = REC_Q_DEFAULT_MAX_RATE};
}

void rec_quality_of(const rec_header *h, rec_quality_params p, rec_quality *q)
{
    // The beam's score includes the EOS's log-prob whenever an EOS was chosen
    // (pipeline/beam.h, every method); MAXLEN marks the rows where none was.
    uint32_t eos_scored = (h->flags & REC_FLAG_MAXLEN) ? 0u : 1u;
    uint32_t n_text = h->n_text;
    if ((h->flags & REC_FLAG_SEED_EOS) && eos_scored && n_text)
        n_text--; // a seed-layout row stores that EOS as its last text id
    q->n_text_tokens = n_text;
    q->n_source = rec_row_n_source(h);
    q->n_scored = n_text + eos_scored;
    q->score_per_token = (double)h->score / (double)(q->n_scored ? q->n_scored : 1u);
    double dur = (double)h->duration_s;
    q->text_per_second = dur > 0.0 ? (double)n_text / dur : 0.0;
    q->semantic_per_text = (double)q->n_source / (double)(n_text ? n_text : 1u);
    q->flags = h->flags & (REC_Q_MAXLEN | REC_Q_LOOP);
    if (q->text_per_second > p.max_rate)
        q->flags |= REC_Q_RATE_HIGH;
    if (q->text_per_second < p.min_rate)
        q->flags |= REC_Q_RATE_LOW;
}

rec_filter rec_filter_none(void)
{
    return (rec_filter){.min_score_per_token = -HUGE_VAL, .drop_flags = 0,
                        .q = rec_quality_default_params()};
}

rec_filter rec_filter_default(void)
{
    return (rec_filter){.min_score_per_token = REC_Q_DEFAULT_MIN_SCORE_PER_TOKEN,
                        .drop_flags = REC_Q_ALL, .q = rec_quality_default_params()};
}

unsigned rec_filter_check(const rec_filter *f, const rec_quality *q)
{
    unsigned why = q->flags & f->drop_flags;
    // Off is -HUGE_VAL exactly, so that a row without a number is kept only then.
    if (f->min_score_per_token != -HUGE_VAL && !(q->score_per_token >= f->min_score_per_token))
        why |= REC_DROP_SCORE;
    return why;
}
