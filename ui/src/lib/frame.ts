// requestAnimationFrame where there is one (the app, jsdom with pretendToBeVisual), else a 16 ms timer.
export function requestFrame(callback: () => void): number {
  if (typeof requestAnimationFrame === "function") return requestAnimationFrame(() => callback());
  return setTimeout(callback, 16) as unknown as number;
}

export function cancelFrame(id: number): void {
  if (typeof cancelAnimationFrame === "function") cancelAnimationFrame(id);
  else clearTimeout(id);
}
