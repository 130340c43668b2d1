"""The tracker's weight on a page: at most 5 KB minified (terser, from the npm registry)
and gzipped."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[2]
LIMIT = 5 * 1024


def test_the_tracker_is_at_most_5_kb_minified_and_gzipped():
    script = (
        "const {minify} = require('terser');"
        "const fs = require('fs');"
        "minify(fs.readFileSync(process.argv[1], 'utf8'), {compress: true, mangle: true})"
        ".then(r => process.stdout.write(r.code));"
    )
    minified = subprocess.run(
        ["node", "-e", script, str(ROOT / "tracker" / "cs.js")],
        cwd=ROOT / "tools" / "sdks",
        capture_output=True,
        check=True,
    ).stdout
    assert len(minified) > 1000  # terser gave back the script, not an error
    size = len(gzip.compress(minified, compresslevel=9))
    assert size <= LIMIT, f"the tracker is {size} bytes minified and gzipped; the limit is {LIMIT}"
