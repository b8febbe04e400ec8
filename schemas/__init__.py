"""The JSON Schemas of qfrun, shipped inside the wheel as package data."""
