"""
The local side of the data, one module per role:

* :mod:`.locations` — input files (local paths or any ``ObjectStoragePath``, both through their
  fsspec filesystem) and outputs written whole or not at all;
* :mod:`.tables` — the CSV checks made before anything is uploaded, and the column-info CSV;
* :mod:`.archives` — the retraining zip, and safe extraction of result archives.

The names below are the ones the operators use, as ``files.resolve`` and so on.
"""

from airflow_provider_predone.files.archives import (
    DEFAULT_LIMITS,
    ArchiveLimits,
    MemberTooLargeError,
    archive_limits,
    build_retrain_zip,
    load_json_member,
    read_json_member,
    result_folder,
    safe_extract,
)
from airflow_provider_predone.files.locations import (
    COPY_CHUNK,
    DataSource,
    filesystem,
    in_object_storage,
    open_for_reading,
    open_for_writing,
    output_location,
    resolve,
)
from airflow_provider_predone.files.tables import (
    COLUMN_TYPES,
    UTF8,
    check_columns,
    check_encoding,
    column_info_rows,
    prepare_upload,
    read_csv_header,
    write_column_info,
)

__all__ = [
    "COLUMN_TYPES",
    "COPY_CHUNK",
    "DEFAULT_LIMITS",
    "UTF8",
    "ArchiveLimits",
    "DataSource",
    "MemberTooLargeError",
    "archive_limits",
    "build_retrain_zip",
    "check_columns",
    "check_encoding",
    "column_info_rows",
    "filesystem",
    "in_object_storage",
    "load_json_member",
    "open_for_reading",
    "open_for_writing",
    "output_location",
    "prepare_upload",
    "read_csv_header",
    "read_json_member",
    "resolve",
    "result_folder",
    "safe_extract",
    "write_column_info",
]
