// The drawing pad's frontend: white strokes on a black square, sent to Python the moment a stroke ends.
//
// Streamlit calls the default export on every rerun with fresh `data` ({size, brush, restore}); the
// pad itself (canvas, strokes, listeners) lives in a WeakMap keyed by the host element, so a rerun
// only changes the brush and never wipes the drawing. It works with mouse, pen and touch (pointer
// events), keeps every stroke for Undo, and on a fresh mount repaints the last drawing Python kept
// (`restore`) and sends it back, so leaving the Draw input and coming back keeps the drawing.
// What it sends is {picture: a PNG data URL, strokes: [{width, points: [x0, y0, x1, y1, ...]}]}:
// the strokes let Python redraw a digit drawn small with a wide brush with a thinner pen. A
// restored bare picture (no strokes) is sent as the PNG data URL alone.

const pads = new WeakMap();
const PNG_PREFIX = "data:image/png;base64,";

function makeButton(label, text) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = text;
  button.setAttribute("aria-label", label);
  button.title = label;
  return button;
}

function createPad(root, setStateValue) {
  const pad = {
    container: document.createElement("div"),
    canvas: document.createElement("canvas"),
    strokes: [], // finished strokes: {width, points: [[x, y], ...]}
    current: null, // the stroke being drawn
    base: null, // an Image restored from Python, under the strokes
    brush: 22,
    setStateValue,
  };
  pad.container.className = "pad";
  // The surface takes the pointer a little beyond the canvas: a stroke started in a rounded
  // corner (not part of the canvas for the browser's hit testing) or just outside its edge
  // draws from where it enters, instead of drawing nothing.
  pad.surface = document.createElement("div");
  pad.surface.className = "surface";
  pad.surface.append(pad.canvas);
  pad.canvas.setAttribute("role", "img");
  pad.canvas.setAttribute("aria-label", "Drawing pad: draw one digit");
  const bar = document.createElement("div");
  bar.className = "bar";
  pad.undo = makeButton("Undo the last stroke", "↶ Undo");
  pad.clear = makeButton("Clear the drawing", "✕ Clear");
  bar.append(pad.undo, pad.clear);
  pad.container.append(pad.surface, bar);
  root.appendChild(pad.container);
  pad.ctx = pad.canvas.getContext("2d");

  pad.surface.addEventListener("pointerdown", (event) => startStroke(pad, event));
  pad.surface.addEventListener("pointermove", (event) => extendStroke(pad, event));
  pad.surface.addEventListener("pointerup", (event) => endStroke(pad, event));
  pad.surface.addEventListener("pointercancel", (event) => endStroke(pad, event));
  onPress(pad.undo, () => {
    if (pad.strokes.length) pad.strokes.pop();
    else pad.base = null;
    repaint(pad);
    send(pad);
  });
  onPress(pad.clear, () => {
    pad.strokes = [];
    pad.base = null;
    repaint(pad);
    send(pad);
  });
  return pad;
}

function onPress(button, action) {
  // Act when the finger or mouse is lifted over the button, not on the click the browser makes of
  // it: a tap right after a stroke got its pointerdown and pointerup but, in Chromium about half
  // the time, no click, so Clear kept the drawing and the next digit went on top of it.
  let pressed = null;
  button.addEventListener("pointerdown", (event) => {
    pressed = event.pointerId;
  });
  button.addEventListener("pointerup", (event) => {
    if (pressed !== event.pointerId || button.disabled) return;
    pressed = null;
    action();
  });
  button.addEventListener("pointercancel", () => {
    pressed = null;
  });
  button.addEventListener("click", (event) => {
    if (event.detail === 0) action(); // Enter or Space on the focused button; a pointer's click was handled
  });
}

function pointOf(pad, event) {
  const box = pad.canvas.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * pad.canvas.width) / box.width,
    ((event.clientY - box.top) * pad.canvas.height) / box.height,
  ];
}

function startStroke(pad, event) {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();  // which also keeps the focus where it was…
  // …so a stroke takes it from a text box (the writer's name): the label keys Y and 0–9 are then
  // the page's again, not letters typed into that box.
  const focused = document.activeElement;
  if (focused && focused !== document.body && typeof focused.blur === "function") focused.blur();
  pad.surface.setPointerCapture(event.pointerId);
  pad.current = { width: pad.brush, points: [pointOf(pad, event)] };
  drawStroke(pad.ctx, pad.current);
}

function extendStroke(pad, event) {
  if (!pad.current) return;
  event.preventDefault();
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) {
    const from = pad.current.points[pad.current.points.length - 1];
    const to = pointOf(pad, each);
    pad.current.points.push(to);
    drawSegment(pad.ctx, from, to, pad.current.width);
  }
}

function endStroke(pad, event) {
  if (!pad.current) return;
  event.preventDefault();
  pad.strokes.push(pad.current);
  pad.current = null;
  send(pad);
}

function drawSegment(ctx, from, to, width) {
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0], to[1]);
  ctx.stroke();
}

function drawStroke(ctx, stroke) {
  const [first, ...rest] = stroke.points;
  if (!rest.length) {
    ctx.beginPath();
    ctx.arc(first[0], first[1], stroke.width / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.lineWidth = stroke.width;
  ctx.beginPath();
  ctx.moveTo(first[0], first[1]);
  for (const point of rest) ctx.lineTo(point[0], point[1]);
  ctx.stroke();
}

function repaint(pad) {
  const { ctx, canvas } = pad;
  ctx.fillStyle = "#000000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#ffffff";
  ctx.fillStyle = "#ffffff";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (pad.base) ctx.drawImage(pad.base, 0, 0, canvas.width, canvas.height);
  for (const stroke of pad.strokes) drawStroke(ctx, stroke);
  updateButtons(pad);
}

function isEmpty(pad) {
  return !pad.strokes.length && !pad.base;
}

function updateButtons(pad) {
  pad.undo.disabled = isEmpty(pad);
  pad.clear.disabled = isEmpty(pad);
}

function message(pad) {
  if (isEmpty(pad)) return null;
  const picture = pad.canvas.toDataURL("image/png");
  if (pad.base) return picture; // strokes over a restored bare picture cannot be redrawn without it
  const round = (value) => Math.round(value * 10) / 10;
  const strokes = pad.strokes.map((stroke) => ({
    width: stroke.width,
    points: stroke.points.flatMap(([x, y]) => [round(x), round(y)]),
  }));
  return { picture, strokes };
}

function send(pad) {
  updateButtons(pad);
  pad.setStateValue("drawing", message(pad));
}

function resize(pad, size) {
  if (pad.canvas.width === size && pad.canvas.height === size) return;
  pad.canvas.width = size;
  pad.canvas.height = size;
  pad.canvas.style.width = `${size}px`;
  pad.canvas.style.height = `${size}px`;
  repaint(pad);
}

function strokesOf(kept) {
  // The strokes of a message this pad sent before, or null when it has none.
  if (!kept || !Array.isArray(kept.strokes)) return null;
  return kept.strokes.map((stroke) => {
    const points = [];
    for (let i = 0; i + 1 < stroke.points.length; i += 2) points.push([stroke.points[i], stroke.points[i + 1]]);
    return { width: Number(stroke.width), points };
  });
}

function restore(pad, kept) {
  const strokes = strokesOf(kept);
  if (strokes && strokes.length) {
    pad.strokes = strokes;
    repaint(pad);
    send(pad); // Python forgot the drawing while the pad was away; it gets it back from here
    return;
  }
  const url = kept;
  if (typeof url !== "string" || !url.startsWith(PNG_PREFIX)) return;
  const image = new Image();
  image.onload = () => {
    if (pad.strokes.length || pad.current) return; // the user started drawing meanwhile
    pad.base = image;
    repaint(pad);
    send(pad); // Python forgot the drawing while the pad was away; it gets it back from here
  };
  image.src = url;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".pad-root");
  let pad = pads.get(parentElement);
  const fresh = !pad;
  if (fresh) {
    pad = createPad(root, setStateValue);
    pads.set(parentElement, pad);
  } else if (!root.contains(pad.container)) {
    root.appendChild(pad.container);
  }
  pad.setStateValue = setStateValue;
  pad.brush = Number(data?.brush) > 0 ? Number(data.brush) : pad.brush;
  resize(pad, Number(data?.size) > 0 ? Number(data.size) : 280);
  if (fresh) {
    repaint(pad);
    restore(pad, data?.restore);
  }
  return () => {
    pads.delete(parentElement);
    pad.container.remove();
  };
}
