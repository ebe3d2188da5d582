import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { setAutoFreeze } from 'immer';
import { App } from './App';
import { startSync } from './bridge';
import './styles.css';

// Recharts 3 keeps chart data in a Redux store whose Immer deep-freezes what it is
// given; our charts hand it ring-buffer views that are rewritten in place (STYLE §10:
// no re-allocation per tick), so freezing is turned off. Immer is recharts' own
// dependency; the setting is global to the one copy in the bundle.
setAutoFreeze(false);
startSync();
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
