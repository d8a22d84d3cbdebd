"""Deployment: Airflow assets and local DAG runs, the main command's pipeline, the production topology."""
