"""Grafana provisioning for compose's Grafana: the Prometheus datasource and a file provider.

compose mounts the build's output directory at `DASHBOARDS_PATH`; Grafana then loads every
`<uid>.json` there (the YAML files under provisioning/ are not dashboards and are skipped).
"""

from __future__ import annotations

import yaml

from dashboards.model import DATASOURCE

PROMETHEUS_URL = "http://prometheus:9090"
"""Prometheus as compose's Grafana reaches it: by its compose service name."""
DASHBOARDS_PATH = "/var/lib/grafana/dashboards"
SCRAPE_INTERVAL = "1s"
"""The stack's scrape interval (pipeline/deploy/configs.py), so $__rate_interval fits it."""


def datasources_yaml() -> str:
    document = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": DATASOURCE["uid"],
                "type": DATASOURCE["type"],
                "access": "proxy",
                "url": PROMETHEUS_URL,
                "isDefault": True,
                "editable": False,
                "jsonData": {"timeInterval": SCRAPE_INTERVAL, "httpMethod": "POST"},
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


def dashboards_yaml() -> str:
    document = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "gameday",
                "orgId": 1,
                "folder": "gameday",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 10,
                "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)
