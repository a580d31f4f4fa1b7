"""A function app with literal, parameter and streaming routes."""

from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()


@app.get("/items/special")
async def special() -> dict[str, str]:
    return {"served_by": "alpha", "route": "special"}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for n in range(3):
            yield f"data: {n}\n\n".encode()

    return StreamingResponse(chunks(), media_type="text/event-stream")
