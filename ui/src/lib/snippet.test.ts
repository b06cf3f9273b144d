import { describe, expect, it } from "vitest";
import { snippetRuns } from "./snippet";

describe("search snippets", () => {
  it("marks the runs between U+E000 and U+E001, and keeps real brackets as text", () => {
    expect(snippetRuns("call \uE000parse\uE001 on [0..n] then \uE000parse\uE001 again")).toEqual([
      { mark: false, text: "call " },
      { mark: true, text: "parse" },
      { mark: false, text: " on [0..n] then " },
      { mark: true, text: "parse" },
      { mark: false, text: " again" },
    ]);
  });

  it("never shows a marker, even unpaired", () => {
    expect(snippetRuns("\uE001a \uE000b")).toEqual([
      { mark: false, text: "a " },
      { mark: true, text: "b" },
    ]);
    expect(snippetRuns("\uE000\uE001x")).toEqual([{ mark: false, text: "x" }]);
  });

  it("reads bracket-marked snippets from an older index", () => {
    expect(snippetRuns("a [hit] b")).toEqual([
      { mark: false, text: "a " },
      { mark: true, text: "hit" },
      { mark: false, text: " b" },
    ]);
  });
});
