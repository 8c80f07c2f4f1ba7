"""The reference live-score pipeline: the system that gameday drills test.

Data flows one way: feed -> ingest -> Kafka -> scorekeeper -> Redis -> edges -> fans.
Nothing here imports the harness (chaos/, slo/, dashboards/, loadtests/).
"""

__all__: list[str] = []
