"""The tool the sanity job runs on the server (plain Python 3, standard library only).

It is staged as a tool file and run from the job's working directory. It never stops at the
first problem: every finding goes into ``sanity_report.json`` as ``name: [ok, detail]``, so the
client's report lists each staging path on its own line. Exits 3 so the client can check that
the return code travels back.
"""

import json
import os
import sys

EXIT_CODE = 3


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def write(path, text):
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def main(argv):
    (config, out1, out2, extra, meta, version, index, metadata_in, shared, fixed) = argv[1:11]
    report = {}

    def check(name, test):
        try:
            report[name] = [True, test()]
        except Exception as exc:  # a report line, whatever went wrong
            report[name] = [False, f"{type(exc).__name__}: {exc}"]

    def config_names_staged_input():
        text = read(config)
        path = text.strip().split("=", 1)[1]
        assert read(path) == "Hello world input!!@!", path
        return path

    def helper_present():
        here = os.path.dirname(os.path.abspath(argv[0]))
        return read(os.path.join(here, "subdir", "helper.txt"))

    def index_with_siblings():
        bwa = os.path.dirname(index)
        seq = os.path.join(os.path.dirname(bwa), "seq")
        assert sorted(os.listdir(bwa)) == ["human.fa", "human.fa.fai"], os.listdir(bwa)
        assert os.listdir(seq) == ["all.fa"], os.listdir(seq)
        return read(index)

    def expect(path, contents):
        def test():
            assert read(path) == contents, read(path)
            return path

        return test

    check("config file rewritten, input dataset staged", config_names_staged_input)
    check("input extra files staged", expect(extra, "INPUT_EXTRA_CONTENTS"))
    check("input metadata file staged", expect(meta, "INPUT METADATA CONTENTS"))
    check("tool helper file staged", helper_present)
    check("metadata directory file staged", expect(metadata_in, "meta input"))
    check("index file staged with its directory (depth)", index_with_siblings)
    check("environment passed", lambda: os.environ["LWR_SANITY_ENV"])
    report["arguments seen"] = [True, {"index": index, "shared": shared, "fixed": fixed}]

    print("sanity stdout")
    write(out1, read(config))
    write(out2, os.environ.get("LWR_SANITY_ENV", "unset"))
    write(os.path.join(os.path.dirname(out1), "dataset_1_files", "extra"), "EXTRA_OUTPUT")
    write(version, "1.0.1")
    write("workdir_output", "WORK DIR OUTPUT")
    write(os.path.join(os.path.dirname(metadata_in), "metadata_output"), "meta output")
    write("galaxy.json", json.dumps([{"filename": "gjson_refer"}]))
    write("gjson_refer", "gjson_refer_contents")
    write("legacy_galaxy.json", '{"filename": "legacy_refer"}\n{"filename": "absent"}\n')
    write("legacy_refer", "legacy_contents")
    write("sanity_report.json", json.dumps(report, indent=1))
    return EXIT_CODE


if __name__ == "__main__":
    sys.exit(main(sys.argv))
