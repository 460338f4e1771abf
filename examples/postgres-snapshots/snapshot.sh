#!/bin/sh
# beforeTraffic hook: keep the features table as the serving version reads it, under that
# version's data snapshot id, before a candidate (and its rollout) may change it. Idempotent: a
# second run replaces the first copy. Connection settings come from the PG* environment.
set -eu
psql -X -q -v ON_ERROR_STOP=1 -v snap="$ROLLGATE_FROM_DATA_SNAPSHOT" <<'SQL'
CREATE TABLE IF NOT EXISTS feature_snapshots (snapshot text NOT NULL, id integer NOT NULL, value text NOT NULL, PRIMARY KEY (snapshot, id));
BEGIN;
DELETE FROM feature_snapshots WHERE snapshot = :'snap';
INSERT INTO feature_snapshots (snapshot, id, value) SELECT :'snap', id, value FROM features;
COMMIT;
SQL
echo "features saved as snapshot $ROLLGATE_FROM_DATA_SNAPSHOT"
