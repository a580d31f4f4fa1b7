"""A function app with a parameter route and a greedy route."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: str) -> dict[str, str]:
    return {"served_by": "beta", "item": item_id}


@app.api_route("/files/{rest:path}", methods=["GET", "POST"])
async def files(rest: str) -> dict[str, str]:
    return {"served_by": "beta", "rest": rest}
