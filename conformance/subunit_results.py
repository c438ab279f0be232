"""Run by the Tempest venv's python in a Tempest workspace: prints {test id: status} of the
last stestr run as JSON (status: success, fail, skip, ...), from its subunit v2 stream."""
import io
import json
import os
import subprocess
import sys

import subunit
import testtools


def main() -> None:
    stestr = os.path.join(os.path.dirname(sys.executable), "stestr")
    stream = subprocess.run([stestr, "last", "--subunit"], capture_output=True).stdout
    results: dict[str, str] = {}

    def on_test(test: dict) -> None:
        results[test["id"]] = test["status"]

    case = subunit.ByteStreamToStreamResult(io.BytesIO(stream),
                                            non_subunit_name="stdout")
    collector = testtools.StreamToDict(on_test)
    collector.startTestRun()
    case.run(collector)
    collector.stopTestRun()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
