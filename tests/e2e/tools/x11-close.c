/*
 * x11-close WINDOW_ID: asks an X window to close the way a window manager does when its close
 * button is clicked, with a WM_DELETE_WINDOW client message. The end-to-end tests run without a
 * window manager, so they send it themselves. Built by desktop.test.mjs with `cc ... -lX11`.
 */
#include <X11/Xlib.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: x11-close WINDOW_ID\n");
        return 2;
    }
    Display *display = XOpenDisplay(NULL);
    if (display == NULL) {
        fprintf(stderr, "x11-close: cannot open the display (is DISPLAY set?)\n");
        return 1;
    }
    Window window = (Window)strtoul(argv[1], NULL, 0);
    XEvent event = {0};
    event.xclient.type = ClientMessage;
    event.xclient.window = window;
    event.xclient.message_type = XInternAtom(display, "WM_PROTOCOLS", False);
    event.xclient.format = 32;
    event.xclient.data.l[0] = (long)XInternAtom(display, "WM_DELETE_WINDOW", False);
    event.xclient.data.l[1] = CurrentTime;
    if (!XSendEvent(display, window, False, NoEventMask, &event)) {
        fprintf(stderr, "x11-close: could not send to window %s\n", argv[1]);
        return 1;
    }
    XCloseDisplay(display); /* flushes the request */
    return 0;
}
