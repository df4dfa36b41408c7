// The service worker (docs/push.md "The client side"): a push says only how
// many chats have new messages ({"type":"bil.push.v1","chats":N}); this shows
// exactly that and nothing else (no sender, no text, no chat), and a tap opens
// the app, which connects, catches up and decrypts as usual.
/* eslint-env serviceworker */
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let p = null;
  try {
    p = event.data ? event.data.json() : null;
  } catch {
    p = null;
  }
  if (!p || p.type !== 'bil.push.v1') return;
  const n = Number.isInteger(p.chats) && p.chats > 0 ? p.chats : 1;
  const body = n > 1 ? `New messages in ${n} chats` : 'New messages';
  event.waitUntil(self.registration.showNotification('bil', { body, tag: 'bil-new-messages', icon: '/favicon.svg' }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((list) => {
      const open = list.find((c) => new URL(c.url).origin === self.location.origin);
      return open ? open.focus() : self.clients.openWindow('/');
    }),
  );
});

// The browser replaced the subscription: the page registers the new one the next time it opens (it checks on unlock).
