// tests/unit/test_manifest.c — man_walk (--audio-dir) on a real tree: every entry
// named like audio is an item, and each one that is not a regular file (a dangling
// link, a link loop, a directory, a device, a fifo, or a link to one) is an
// input-stage error item naming the problem, so rows + errors balance with a
// listing. coordinator/manifest.c is compiled in (sl_coordinator would bring MPI).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator/manifest.h"
#include "tests/testutil.h"

static char g_root[2048];

// g_root/rel; four slots, so up to four results are valid at once.
static const char *at(const char *rel)
{
    static char p[4][4200];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(p[slot], sizeof p[slot], "%.2047s/%.2047s", g_root, rel);
    return p[slot];
}

static void touch(const char *rel)
{
    FILE *f = fopen(at(rel), "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("not really audio", f);
    fclose(f);
}

static void link_to(const char *target, const char *rel)
{
    CU_ASSERT_EQUAL_FATAL(symlink(target, at(rel)), 0);
}

static const man_item *find(const manifest *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->items[i].id, id) == 0)
            return &m->items[i];
    return NULL;
}

// The item id must exist; with want == NULL it must be good, else its message
// must contain want (and name the entry).
static void expect(const manifest *m, const char *id, const char *want)
{
    const man_item *it = find(m, id);
    CU_ASSERT_PTR_NOT_NULL(it);
    if (!it) {
        fprintf(stderr, "\n  no item \"%s\"\n", id);
        return;
    }
    CU_ASSERT_EQUAL(it->bad_stage, SL_STAGE_INPUT);
    CU_ASSERT_STRING_EQUAL(it->path, at(id));
    if (!want) {
        CU_ASSERT_PTR_NULL(it->bad);
        if (it->bad)
            fprintf(stderr, "\n  \"%s\": unexpected error: %s\n", id, it->bad);
        return;
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(it->bad);
    CU_ASSERT_PTR_NOT_NULL(strstr(it->bad, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(it->bad, at(id)));
    if (!strstr(it->bad, want))
        fprintf(stderr, "\n  \"%s\": \"%s\" lacks \"%s\"\n", id, it->bad, want);
}

static void test_walk_every_kind_of_entry(void)
{
    const char *tmp = sl_test_tmpdir("manifest");
    // The root itself is named like audio: it is walked, never an item.
    snprintf(g_root, sizeof g_root, "%.2000s/corpus.wav", tmp);
    CU_ASSERT_EQUAL_FATAL(mkdir(g_root, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(at("sub"), 0755), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(at("x.wav"), 0755), 0);   // a directory named like audio
    CU_ASSERT_EQUAL_FATAL(mkdir(at("empty"), 0755), 0);   // an ordinary directory: no item
    touch("a.wav");
    touch("UP.FLAC");                                     // extensions ignore case
    touch("sub/b.flac");
    touch("x.wav/c.wav");                                 // still walked
    touch("notes.txt");                                   // not audio: no item
    link_to("a.wav", "link_ok.wav");                      // a link to a file: decoded
    link_to("sub", "sub_link");                           // a link to a directory: not walked
    link_to("nowhere.wav", "dangling.wav");
    link_to("sub/missing/deeper.wav", "dangling_dir.wav"); // ENOENT on a path component
    link_to("loop.wav", "loop.wav");
    link_to("/dev/zero", "zero.wav");
    link_to("sub", "dirlink.wav");
    CU_ASSERT_EQUAL_FATAL(mkfifo(at("fifo.wav"), 0644), 0);
    link_to("fifo.wav", "fifolink.wav");
    link_to("nowhere.txt", "dangling.txt");               // not named like audio: no item

    manifest m;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(man_walk(g_root, NULL, &m, &e), SL_OK);
    expect(&m, "a.wav", NULL);
    expect(&m, "UP.FLAC", NULL);
    expect(&m, "sub/b.flac", NULL);
    expect(&m, "x.wav/c.wav", NULL);
    expect(&m, "link_ok.wav", NULL);
    expect(&m, "dangling.wav", "dangling link (to \"nowhere.wav\"");
    expect(&m, "dangling_dir.wav", "dangling link");
    expect(&m, "loop.wav", "link loop");
    expect(&m, "zero.wav", "not a regular file (a link to a character device)");
    expect(&m, "dirlink.wav", "not a regular file (a link to a directory)");
    expect(&m, "x.wav", "not a regular file (a directory)");
    expect(&m, "fifo.wav", "not a regular file (a fifo)");
    expect(&m, "fifolink.wav", "not a regular file (a link to a fifo)");
    // Nothing else: 5 good + 8 bad, and the error items are counted.
    CU_ASSERT_EQUAL(m.n, 13);
    CU_ASSERT_EQUAL(m.n_bad_lines, 8);
    CU_ASSERT_EQUAL(m.n_duplicates, 0);
    for (size_t i = 1; i < m.n; i++) // sorted, unique
        CU_ASSERT(strcmp(m.items[i - 1].id, m.items[i].id) < 0);
    CU_ASSERT_STRING_EQUAL(m.root, g_root);
    man_free(&m);

    // An extension list that leaves them out leaves their errors out too.
    CU_ASSERT_EQUAL_FATAL(man_walk(g_root, "flac", &m, &e), SL_OK);
    CU_ASSERT_EQUAL(m.n, 2); // UP.FLAC, sub/b.flac
    CU_ASSERT_EQUAL(m.n_bad_lines, 0);
    man_free(&m);
    sl_test_rmtree(tmp);
}

static void test_walk_refuses_a_non_directory(void)
{
    const char *tmp = sl_test_tmpdir("manifest_nd");
    snprintf(g_root, sizeof g_root, "%.2000s", tmp);
    touch("file.wav");
    manifest m;
    sl_err e;
    CU_ASSERT_EQUAL(man_walk(at("file.wav"), NULL, &m, &e), SL_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not a directory"));
    CU_ASSERT_EQUAL(man_walk(at("absent"), NULL, &m, &e), SL_EIO);
    sl_test_rmtree(tmp);
}

// Item id must exist with (path, start, end) or, with want, be bad with want in its message.
static void expect_piece(const manifest *m, const char *id, const char *path, int64_t start,
                         int64_t end, const char *want)
{
    const man_item *it = find(m, id);
    CU_ASSERT_PTR_NOT_NULL(it);
    if (!it) {
        fprintf(stderr, "\n  no item \"%s\"\n", id);
        for (size_t i = 0; i < m->n; i++)
            fprintf(stderr, "    have \"%s\"%s%s\n", m->items[i].id, m->items[i].bad ? ": " : "",
                    m->items[i].bad ? m->items[i].bad : "");
        return;
    }
    if (want) {
        CU_ASSERT_PTR_NOT_NULL(it->bad);
        if (it->bad) {
            if (!strstr(it->bad, want))
                fprintf(stderr, "\n  %s: \"%s\" lacks \"%s\"\n", id, it->bad, want);
            CU_ASSERT_PTR_NOT_NULL(strstr(it->bad, want));
        }
        CU_ASSERT_EQUAL(it->bad_stage, SL_STAGE_INPUT);
        return;
    }
    CU_ASSERT_PTR_NULL(it->bad);
    CU_ASSERT_STRING_EQUAL(it->path, path);
    CU_ASSERT_EQUAL(it->start, start);
    CU_ASSERT_EQUAL(it->end, end);
    CU_ASSERT_EQUAL(man_item_is_piece(it), end > 0);
    if (end > 0)
        CU_ASSERT_EQUAL(it->n_samples, end - start);
}

// NeMo JSON lines: pieces keyed by the segment key, whole files, NeMo's other fields
// ignored, relative paths against the manifest's directory, every bad line an error
// item naming the line, identical pieces one item.
static void test_nemo_json_lines(void)
{
    const char *tmp = sl_test_tmpdir("manifest_nemo");
    snprintf(g_root, sizeof g_root, "%.2000s", tmp);
    static const char text[] =
        "\n"
        "{\"audio_filepath\": \"talk/a.wav\", \"offset\": 1.5, \"duration\": 1.5, \"text\": \"hi\"}\n"
        "{\"audio_filepath\": \"talk/a.wav\", \"duration\": 0.25, \"lang\": \"en\"}\n"
        "{\"audio_filepath\": \"/abs/b.flac\", \"offset\": 0.00003, \"duration\": 2}\n"
        "  {\"audio_filepath\": \"whole.wav\"}\n"
        "{\"audio_filepath\": \"talk/a.wav\", \"offset\": 1.5, \"duration\": 1.5}\n"
        "{\"audio_filepath\": \"neg.wav\", \"offset\": -1, \"duration\": 1}\n"
        "{\"audio_filepath\": \"zero.wav\", \"offset\": 1, \"duration\": 0}\n"
        "{\"audio_filepath\": \"str.wav\", \"offset\": \"1\", \"duration\": 1}\n"
        "{\"offset\": 1, \"duration\": 1}\n"
        "{\"audio_filepath\": \"broken.wav\", \"duration\": 1\n"
        "{\"audio_filepath\": 7, \"duration\": 1}\n"
        "{\"audio_filepath\": \"off.wav\", \"offset\": 2}\n"
        "{\"audio_filepath\": \"far.wav\", \"offset\": 99999, \"duration\": 5}\n"
        "[1, 2]\n"
        "{\"audio_filepath\": \"z.wav\", \"offset\": 0, \"duration\": 0.5}\n";
    manifest m;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(man_parse(text, sizeof text - 1, at("pieces.json"), &m, &e), SL_OK);
    expect_piece(&m, "talk/a.wav@00001.500-00003.000", at("talk/a.wav"), 24000, 48000, NULL);
    // No "offset": the whole file (NeMo's manifests of whole utterances); its duration
    // is the sample count. "offset": 0 names a piece from the start.
    expect_piece(&m, "talk/a.wav", at("talk/a.wav"), 0, 0, NULL);
    const man_item *whole = find(&m, "talk/a.wav");
    CU_ASSERT(whole && whole->n_samples == 4000);
    expect_piece(&m, "z.wav@00000.000-00000.500", at("z.wav"), 0, 8000, NULL);
    expect_piece(&m, "/abs/b.flac@00000.000-00002.000", "/abs/b.flac", 0, 32000, NULL);
    expect_piece(&m, "whole.wav", at("whole.wav"), 0, 0, NULL);
    expect_piece(&m, "neg.wav@line 7", NULL, 0, 0, "line 7: offset -1 is negative");
    expect_piece(&m, "zero.wav@line 8", NULL, 0, 0, "line 8: duration 0 is not positive");
    expect_piece(&m, "str.wav@line 9", NULL, 0, 0, "line 9: \"offset\" is not a number");
    expect_piece(&m, "pieces.json:10", NULL, 0, 0, "line 10: \"audio_filepath\" is missing");
    expect_piece(&m, "pieces.json:11", NULL, 0, 0, "line 11: not a JSON object");
    expect_piece(&m, "pieces.json:12", NULL, 0, 0, "line 12: \"audio_filepath\" is not a string");
    expect_piece(&m, "off.wav@line 13", NULL, 0, 0, "line 13: \"offset\" 2 without a \"duration\"");
    expect_piece(&m, "far.wav@line 14", NULL, 0, 0, "past 99999.999 s");
    expect_piece(&m, "pieces.json:15", NULL, 0, 0, "line 15: not a JSON object");
    CU_ASSERT_EQUAL(m.n_duplicates, 1); // line 6 repeats line 2
    CU_ASSERT_EQUAL(m.n_bad_lines, 9);
    CU_ASSERT_EQUAL(m.n, 14);
    man_free(&m);
    sl_test_rmtree(tmp);
}

// fairseq tsv with `start end` columns (seconds) after the sample count: pieces; plain
// lines stay whole files; bad columns are error items naming the line.
static void test_tsv_pieces(void)
{
    const char *tmp = sl_test_tmpdir("manifest_tsvp");
    snprintf(g_root, sizeof g_root, "%.2000s", tmp);
    char text[4096];
    snprintf(text, sizeof text,
             "%s\n"
             "long.wav\t1600000\t10\t12.5\n"
             "long.wav\t1600000\t0.0000312\t0.0000937\n"
             "long.wav\t1600000\n"
             "x.wav\t\t3\t4\n"
             "long.wav\t1600000\t5\n"
             "long.wav\t1600000\t5\tsix\n"
             "long.wav\t1600000\t6\t5\n"
             "long.wav\t1600000\t1\t2\t3\n", tmp);
    manifest m;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(man_parse(text, strlen(text), at("train.tsv"), &m, &e), SL_OK);
    expect_piece(&m, "long.wav@00010.000-00012.500", at("long.wav"), 160000, 200000, NULL);
    expect_piece(&m, "long.wav@00000.000-00000.000", at("long.wav"), 0, 1, NULL); // 0.499, 1.499 samples
    expect_piece(&m, "long.wav", at("long.wav"), 0, 0, NULL);
    expect_piece(&m, "x.wav@00003.000-00004.000", at("x.wav"), 48000, 64000, NULL);
    expect_piece(&m, "long.wav@line 6", NULL, 0, 0, "line 6: bad piece columns");
    expect_piece(&m, "long.wav@line 7", NULL, 0, 0, "line 7: bad piece columns");
    expect_piece(&m, "long.wav@line 8", NULL, 0, 0, "line 8: piece ends at 5 s");
    expect_piece(&m, "long.wav@line 9", NULL, 0, 0, "line 9: bad piece columns");
    CU_ASSERT_EQUAL(m.n, 8);
    man_free(&m);
    sl_test_rmtree(tmp);
}

int main(void)
{
    static const sl_test_case cases[] = {
        {"walk_every_kind_of_entry", test_walk_every_kind_of_entry},
        {"walk_refuses_a_non_directory", test_walk_refuses_a_non_directory},
        {"nemo_json_lines", test_nemo_json_lines},
        {"tsv_pieces", test_tsv_pieces},
        {NULL, NULL}};
    return sl_test_main("manifest", cases);
}
