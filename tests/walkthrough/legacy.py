"""csvtsdb as its author ships it (PyPI ``csvtsdb`` 0.1.7, MIT, by Kamila Součková): a Klein app
whose ``POST /`` appends ``label value`` to a CSV file and ``GET /`` returns the file's tail.

Nothing is changed; this module only builds its resource on ``$TSDB_FILE``.
"""

import os

from csvtsdb import CsvTsdb

FILE = os.environ.get("TSDB_FILE", "data.csv")

resource = CsvTsdb(FILE).resource
