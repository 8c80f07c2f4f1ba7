"""`python -m pipeline.corrections --config FILE`: run the score-correction service."""

from pipeline.corrections.service import CorrectionsConfig, serve
from pipeline.service import main

raise SystemExit(main("corrections", CorrectionsConfig, serve))
