"""What several routers share: paging parameters and the `Link` header."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request, Response

from recaudo.api.schemas import Page
from recaudo.services.queries import MAX_PAGE_SIZE, Paging

T = TypeVar("T")


def paging(
    page: Annotated[int, Query(ge=1, le=10**9, description="1-based page number.")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, 1 to {MAX_PAGE_SIZE}.")
    ] = 50,
) -> Paging:
    return Paging(page=page, page_size=page_size)


PagingDep = Annotated[Paging, Depends(paging)]


def paged(request: Request, response: Response, items: list[T], total: int, p: Paging) -> Page[T]:
    """The page body, plus a `Link` header (RFC 8288) to the next and previous pages."""
    links = []
    if p.offset + p.page_size < total:
        links.append(f'<{request.url.include_query_params(page=p.page + 1)}>; rel="next"')
    if p.page > 1:
        last = max(1, -(-total // p.page_size))
        previous = min(p.page - 1, last)
        links.append(f'<{request.url.include_query_params(page=previous)}>; rel="prev"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return Page(items=items, total=total, page=p.page, page_size=p.page_size)
