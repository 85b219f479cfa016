"""The service's one structured logger (Powertools: JSON lines, constant messages, data in keys)."""

from aws_lambda_powertools import Logger

SERVICE = "pix-payouts"
logger = Logger(service=SERVICE)
