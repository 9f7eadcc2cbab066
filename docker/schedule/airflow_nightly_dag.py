"""Airflow DAG: nightly duet regeneration on Dataflow, one task per stage.

Each task is the ``duet`` command a user runs, with Dataflow options appended; unchanged
stages finish in seconds because every job records its input fingerprints. Set the Airflow
Variables ``duet_project``, ``duet_region``, ``duet_bucket`` and ``duet_image``.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.models import Variable
from airflow.operators.bash import BashOperator

PROJECT = Variable.get("duet_project", "my-project")
REGION = Variable.get("duet_region", "europe-west1")
BUCKET = Variable.get("duet_bucket", "gs://my-bucket")
IMAGE = Variable.get("duet_image", "europe-west1-docker.pkg.dev/my-project/duet/worker:latest")
DATA = f"{BUCKET}/duet"
DATAFLOW = (
    f"--runner DataflowRunner --project {PROJECT} --region {REGION} "
    f"--temp_location {BUCKET}/tmp --sdk_container_image {IMAGE} --experiments=use_runner_v2"
)

STAGES = {
    "playlists": f"duet playlists --input {BUCKET}/raw/mpd --format mpd --output {DATA}",
    "cooccurrence": f"duet cooccurrence --playlists {DATA}/playlists.parquet --output {DATA} --blocks 16",
    "w2v": f"duet embeddings w2v --playlists {DATA}/playlists.parquet --output {DATA}",
    "pairs": f"duet pairs --data {DATA} --strategies playlist_co,playlist_tco,w2v --epochs 0:50 --keep 7",
}

with DAG(
    dag_id="duet_nightly",
    schedule="15 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
) as dag:
    tasks = {name: BashOperator(task_id=name, bash_command=f"{cmd} {DATAFLOW}")
             for name, cmd in STAGES.items()}  # fmt: skip
    tasks["playlists"] >> [tasks["cooccurrence"], tasks["w2v"]] >> tasks["pairs"]
