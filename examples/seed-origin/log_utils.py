# The seed imports `logger` from a log_utils module of its author's ("replace or remove as
# appropriate"); this is the smallest stand-in: the standard library's logging.
import logging

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
logger = logging.getLogger("seed")
