// common/stage.h — where an utterance's trip through a job ended in an error.
//
// One enum for every layer: the pipeline says where a file failed (tokens.h,
// pipeline.h), the manifest marks entries it cannot use (manifest.h), the
// coordinator marks crashes and regenerate's inherited errors, and
// storage/row.h stores the number as the u16 `stage` of an error record. It
// lives here because pipeline/ and storage/ may not include each other.
//
// The numbers are stored in every dataset's error records: never renumber a
// stage, only add new ones before SL_STAGE_COUNT (storage/row.h asserts each
// stored value). The names are what `spearlabel export --errors` and
// `spearlabel stat` print. Pure; thread-safe.
#pragma once

typedef enum sl_stage {
    SL_STAGE_NONE = -1,      // no failure (tok_failed_stage after a success); never stored
    SL_STAGE_INPUT = 0,      // manifest line / --audio-dir entry / path problems
    SL_STAGE_AUDIO = 1,      // decode, resample, duration limits
    SL_STAGE_FEATURES = 2,   // HuBERT / MFCC
    SL_STAGE_TOKENS = 3,     // k-means assignment
    SL_STAGE_TEXT = 4,       // speech->text decoding
    SL_STAGE_CRASH = 5,      // the utterance crashed a worker twice
    SL_STAGE_INHERITED = 6,  // copied from a source dataset by regenerate
    SL_STAGE_COUNT = 7       // stored stages are 0 .. SL_STAGE_COUNT-1
} sl_stage;

// "input" "audio" "features" "tokens" "text" "crash" "inherited"; "none" for
// SL_STAGE_NONE; "unknown" for any other number (a record from a newer build).
const char *sl_stage_name(int stage);
