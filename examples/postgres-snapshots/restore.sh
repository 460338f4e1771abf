#!/bin/sh
# afterRollback hook: put back the features table the version now serving was built for, from
# the snapshot beforeTraffic took. Idempotent: it replaces the table's rows in one transaction.
set -eu
psql -X -q -v ON_ERROR_STOP=1 -v snap="$ROLLGATE_DATA_SNAPSHOT" <<'SQL'
BEGIN;
-- No such snapshot: stop (a division by zero) rather than empty the table.
SELECT 1 / count(*) AS present FROM feature_snapshots WHERE snapshot = :'snap' \gset
DELETE FROM features;
INSERT INTO features (id, value) SELECT id, value FROM feature_snapshots WHERE snapshot = :'snap';
COMMIT;
SQL
echo "features restored from snapshot $ROLLGATE_DATA_SNAPSHOT"
