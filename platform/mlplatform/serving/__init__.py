"""The online prediction API: FastAPI on uvicorn, features from Feast's online store."""
